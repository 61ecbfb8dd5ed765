#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Measures the freeze of Checkpoint-Process -LeaveRunning -Background against a frozen -LeaveRunning checkpoint of
    the same process in the same run, and the process's slowdown while the background copy runs.
.DESCRIPTION
    For each size: Tests/Targets/bgcounter.c sweeps that much memory without pause, stamping every page (its
    throughput counter: pages stamped). After one warm-up checkpoint (a session's first is JIT-bound), $Runs pairs
    of checkpoints alternate frozen and background. Rows: FrozenTime (the engine's own figure) and the whole call,
    min and median; for background rows, the process's pages stamped per second during the call against the
    same rate measured over 2 s before it (slowdown = 1 - during / before). Each restored image is not checked here:
    Tests/Pester/BackgroundCheckpoint.Tests.ps1 proves consistency.
    -Module measures another build (a copy of out/CriuPS kept from before a change) the same way, to compare.
#>
[CmdletBinding()]
param(
    [int[]]$MiB = @(1024, 4096),
    [int]$Runs = 3,
    [string]$Module
)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$root = Split-Path $PSScriptRoot
Import-Module ($Module ? $Module : (Join-Path $root 'out/CriuPS/CriuPS.psd1')) -Force
Import-Module (Join-Path $root 'Tests/Pester/TestHelpers.psm1') -Force
$work = Join-Path ([IO.Path]::GetTempPath()) "criups-background-$PID"
New-Item -ItemType Directory -Force $work | Out-Null

function Get-Stamps([int]$Id, [string]$Log) {
    $line = Invoke-SelfCheck $Id $Log -TimeoutSeconds 60
    if ($line -notmatch '^OK .*stamps=(\d+)') { throw "bgcounter ${Id}: $line" }
    [long]$Matches[1]
}

function Get-Median([double[]]$Values) { $sorted = $Values | Sort-Object; $sorted[[int][Math]::Floor(($sorted.Count - 1) / 2)] }

$rows = foreach ($size in $MiB) {
    $target = $null
    try {
        $log = Join-Path $work "bgcounter-$size.log"
        $target = Start-TestTarget -Program (Get-TestTarget 'bgcounter') -Arguments $size, (Join-Path $work "t$size") -WorkDirectory (Join-Path $work "t$size") -TimeoutSeconds 600
        $log = Join-Path $work "t$size/bgcounter.log"
        $image = Join-Path $work "image-$size"
        Checkpoint-Process -Id $target -ImagePath $image -Force -LeaveRunning -Background | Out-Null
        $samples = @{ Frozen = @(); Background = @() }
        for ($run = 0; $run -lt $Runs; $run++) {
            foreach ($mode in 'Frozen', 'Background') {
                Remove-Item -Recurse -Force $image -ErrorAction Ignore
                $a = Get-Stamps $target $log; $clock = [Diagnostics.Stopwatch]::StartNew(); Start-Sleep -Seconds 2
                $b = Get-Stamps $target $log; $quiet = ($b - $a) / $clock.Elapsed.TotalSeconds
                $clock.Restart()
                $result = Checkpoint-Process -Id $target -ImagePath $image -Force -LeaveRunning -Background:($mode -eq 'Background')
                $call = $clock.Elapsed.TotalSeconds
                $c = Get-Stamps $target $log
                $during = ($c - $b) / $clock.Elapsed.TotalSeconds
                $samples[$mode] += [pscustomobject]@{ Frozen = $result.FrozenTime.TotalMilliseconds; Call = $call; Slowdown = 1 - $during / $quiet }
            }
        }
        foreach ($mode in 'Frozen', 'Background') {
            $s = $samples[$mode]
            [pscustomobject]@{
                MiB = $size; Mode = $mode
                'FrozenMs (min)' = [Math]::Round(($s.Frozen | Measure-Object -Minimum).Minimum, 1)
                'FrozenMs (median)' = [Math]::Round((Get-Median $s.Frozen), 1)
                'Call s (median)' = [Math]::Round((Get-Median $s.Call), 2)
                'Slowdown during call (median)' = '{0:P0}' -f (Get-Median $s.Slowdown)
            }
        }
    }
    finally {
        if ($target) { Stop-TestProcesses -Also $target }
        Remove-Item -Recurse -Force (Join-Path $work "image-$size") -ErrorAction Ignore
    }
}
Remove-Item -Recurse -Force $work -ErrorAction Ignore
$rows | Format-Table -AutoSize
