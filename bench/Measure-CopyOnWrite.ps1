#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Measures what a forked tree's shared memory costs after a restore: checkpoints and restores a tree of
    Tests/Targets/cowtree.c (a parent's -MiB MiB of distinct data shared copy-on-write by -Children children and a
    grandchild, each writing a few pages) and prints the tree's Pss before and after, the machine's MemAvailable,
    and the dump's and restore's times.
.DESCRIPTION
    -Root is the repository whose out/CriuPS is measured (another build, for a before/after comparison). The images
    go under -ImageRoot and are removed afterwards; the tree is killed. MemAvailable moves with whatever else the
    machine runs: the tree's Pss (the sum of each process's /proc/PID/smaps_rollup Pss) is the steady figure.
#>
[CmdletBinding()]
param(
    [string]$Root = (Split-Path -Parent $PSScriptRoot),
    [ValidateRange(2, 65536)]
    [int]$MiB = 256,
    [ValidateRange(2, 62)]
    [int]$Children = 3,
    [string]$ImageRoot = '/var/tmp'
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $Root 'out/CriuPS/CriuPS.psd1') -Force
Import-Module (Join-Path $PSScriptRoot '../Tests/Pester/TestHelpers.psm1') -Force

function Get-MemAvailable { [long]((Get-Content /proc/meminfo | Where-Object { $_ -like 'MemAvailable:*' }) -replace '\D', '') }
function Get-TreePss([int[]]$Ids) {
    ($Ids | ForEach-Object { [long]((Get-Content "/proc/$_/smaps_rollup" | Where-Object { $_ -like 'Pss:*' }) -replace '\D', '') } | Measure-Object -Sum).Sum
}

$work = Join-Path ([IO.Path]::GetTempPath()) "criups-cow-$PID"
$image = Join-Path $ImageRoot "criups-cow-$PID"
try {
    $target = Start-TestTarget -Program (Get-TestTarget 'cowtree') -Arguments $work, $MiB, $Children -WorkDirectory $work -TimeoutSeconds 600
    $log = Join-Path $work 'cowtree.log'
    $check = Invoke-SelfCheck $target $log -TimeoutSeconds 600
    if ($check -notlike 'OK *') { throw "the tree did not verify before the checkpoint: $check" }
    $tree = @($target) + @(Get-Content (Join-Path $work 'children') | ForEach-Object { [int]$_ })
    $pssBefore = Get-TreePss $tree
    $clock = [Diagnostics.Stopwatch]::StartNew()
    $saved = Checkpoint-Process -Id $target -ImagePath $image
    $dump = $clock.Elapsed.TotalSeconds
    foreach ($id in $tree) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id to end" 60 }
    $availableStopped = Get-MemAvailable
    $clock.Restart()
    $restored = Restore-Process $saved.Path
    $restore = $clock.Elapsed.TotalSeconds
    $tree | ForEach-Object { Register-TestProcess $_ }
    $pssAfter = Get-TreePss $tree
    $availableRestored = Get-MemAvailable
    $check = Invoke-SelfCheck $target $log -TimeoutSeconds 600
    if ($check -notlike 'OK *') { throw "the restored tree did not verify: $check" }
    [pscustomobject]@{
        Build = $Root
        MiB = $MiB
        Processes = $tree.Count
        DumpSeconds = [math]::Round($dump, 2)
        RestoreSeconds = [math]::Round($restore, 2)
        MemorySeconds = [math]::Round($restored.MemoryTime.TotalSeconds, 2)
        TreePssBeforeKiB = $pssBefore
        TreePssAfterKiB = $pssAfter
        RestoredTreeTookKiB = $availableStopped - $availableRestored
    }
}
finally {
    Stop-TestProcesses
    Remove-Item -Recurse -Force $image, $work -ErrorAction Ignore
}
