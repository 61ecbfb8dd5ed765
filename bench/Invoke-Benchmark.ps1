#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Measures checkpoint and restore on this machine, next to the machine's own limits measured in the same run.
.DESCRIPTION
    For each workload (bench/workloads/*.c, built with gcc): start it, checkpoint it (the process ends), restore
    it, and let it verify itself (a run whose workload does not verify is an error, not a number). Each figure is
    the minimum and the median of -Runs runs. The raw limits (memcpy bandwidth, sequential write and read of
    1 GiB to the image directory's filesystem, first touch of fresh anonymous memory) are measured in the same
    run, because this machine is shared and noisy. Writes a table and out/bench/bench-<time>.json.

    The lazy-* workloads measure post-copy against the full restore of the same image in the same run: the time
    until the process runs (Restore-Process) for a full restore, a lazy restore from the image directory and one
    from a page server on the loopback (plain TCP, then TLS); the time the process then takes to read all its memory
    (on fault, for a lazy restore); and for each lazy restore the pages per second: from
    the process running to the last page in (wall clock), and while serving faults (the process checks all its
    memory as soon as it runs) and background pages (time spent reading and placing them).
.PARAMETER CompareDigests
    Measures each workload (but the lazy ones) without digests as well, each run right after the same run with
    them: the checkpoint writes no criups-digests.img (CRIUPS_BENCH_NO_DIGESTS=1, a knob for benchmarks only),
    so the restore has nothing to verify. Adds a row "<workload> (no digests)" and a line with what the digests
    cost the dump and the restore.
.PARAMETER Session
    How the cmdlets run: Warm, in this session (the module loaded and its code compiled by the runs before), and
    Cold, each checkpoint and each restore in a new PowerShell that imports the module first, as a script, a cron job
    or an Ansible task runs them. A cold row's times are the cmdlet's own, measured inside that PowerShell; its
    import and the whole life of that PowerShell (start to exit) are reported beside them. Both by default.
.PARAMETER ImageRoot
    Directories to put the images in, one set of runs each: by default tmpfs (/dev/shm) and disk (/var/tmp).
.PARAMETER CriuPath
    A criu binary (CRIU 4.x, built and installed by you: the bench never builds it) to measure the same workloads
    with, in the same run: each run of a workload (but the lazy ones) is then also dumped with `criu dump
    --display-stats` (frozen: its "Freezing time" plus its "Frozen time", see Measure-CriuRun) and restored with
    `criu restore -d`, timed from outside as one command, and
    verified the same way. Adds a "criu" row per workload and a line saying where CriuPS, cold and warm, stands
    against CRIU's medians. Without it, compare with the CRIU numbers in the README (dated).
#>
[CmdletBinding()]
param(
    [string[]]$ImageRoot = @('/dev/shm', '/var/tmp'),
    [ValidateRange(3, 20)]
    [int]$Runs = 3,
    [ValidateSet('memory-1g', 'memory-4g', 'vmas-5000', 'threads-64', 'tree-32', 'redis-1m', 'lazy-1g')]
    [string[]]$Workload = @('memory-1g', 'memory-4g', 'vmas-5000', 'threads-64', 'tree-32', 'redis-1m', 'lazy-1g'),
    [switch]$CompareDigests,
    [ValidateSet('Warm', 'Cold')]
    [string[]]$Session = @('Warm', 'Cold'),
    [ValidateScript({ Test-Path $_ -PathType Leaf })]
    [string]$CriuPath
)

$ErrorActionPreference = 'Stop'
# Filling or checking gigabytes on this VM takes seconds per GiB (first touch): the waits around the timed parts allow for it.
$SetupSeconds = 300
$ProgressPreference = 'SilentlyContinue'
$root = Split-Path $PSScriptRoot
$modulePath = Join-Path $root 'out/CriuPS/CriuPS.psd1'
Import-Module $modulePath -Force
Import-Module (Join-Path $root 'Tests/Pester/TestHelpers.psm1') -Force
$build = Join-Path ([IO.Path]::GetTempPath()) "criups-bench-$PID"
New-Item -ItemType Directory -Force $build | Out-Null
# A run that fails leaves no build directory behind either (the workloads and images go in their own finally blocks).
trap { Remove-Item -Recurse -Force $build -ErrorAction Ignore; break }

# bench/workloads/NAME.c, or the test target of that name (memhog is both a test target and a workload).
function Build-Workload([string]$Name) {
    $source = Join-Path $PSScriptRoot "workloads/$Name.c"
    if (-not (Test-Path $source)) { return Get-TestTarget $Name }
    $binary = Join-Path $build $Name
    if (-not (Test-Path $binary)) {
        $output = & gcc -O2 -Wall -pthread -o $binary $source 2>&1
        if ($LASTEXITCODE -ne 0) { throw "gcc failed for ${Name}: $output" }
    }
    $binary
}

# The workloads: how to start one, and how it proves itself (a C target logs OK on SIGUSR1).
$workloads = [ordered]@{
    'memory-1g'  = @{ Program = 'memhog'; Arguments = { param($log) '1024', $log } }
    'memory-4g'  = @{ Program = 'memhog'; Arguments = { param($log) '4096', $log } }
    'vmas-5000'  = @{ Program = 'vmas'; Arguments = { param($log) '5000', $log } }
    'threads-64' = @{ Program = 'threads'; Arguments = { param($log) '64', $log } }
    'tree-32'    = @{ Program = 'pipetree'; Arguments = { param($log) '32', $log } }
    'redis-1m'   = @{ Program = 'redis' }
    'lazy-1g'    = @{ Program = 'lazymem'; Arguments = { param($log) '1024', $log }; Lazy = $true }
}

function Invoke-Limit([string]$Mode, [string[]]$Arguments) {
    $output = & (Build-Workload 'limits') $Mode @Arguments
    if ($LASTEXITCODE -ne 0) { throw "limits $Mode failed: $output" }
    [double]$output
}

function Get-Median([double[]]$Values) {
    $sorted = $Values | Sort-Object
    if ($sorted.Count % 2) { $sorted[[int][Math]::Floor($sorted.Count / 2)] } else { ($sorted[$sorted.Count / 2 - 1] + $sorted[$sorted.Count / 2]) / 2 }
}

function Get-LoadAverage { [double](Get-Content /proc/loadavg -Raw).Split(' ')[0] }

function Get-DirectorySize([string]$Path) { (Get-ChildItem $Path -File -Recurse | Measure-Object Length -Sum).Sum }

# Starts the redis workload: redis-server on a free loopback port without persistence, loaded with a million keys
# (DEBUG POPULATE: redis 7 answers it only with --enable-debug-command).
function Start-Redis([string]$Work) {
    $probe = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $probe.Start(); $script:RedisPort = $probe.LocalEndpoint.Port; $probe.Stop()
    $server = (Get-Command redis-server -CommandType Application -ErrorAction Stop)[0].Source
    $target = Start-TestTarget -Program $server -WorkDirectory $Work -Arguments '--port', "$script:RedisPort", '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--enable-debug-command', 'yes', '--pidfile', (Join-Path $Work 'ready')
    Wait-Until { (& redis-cli -p $script:RedisPort ping 2>$null) -eq 'PONG' } 'redis to answer'
    $loaded = & redis-cli -p $script:RedisPort DEBUG POPULATE 1000000 bench 64
    if ([int](& redis-cli -p $script:RedisPort DBSIZE) -ne 1000000) { throw "redis did not load a million keys: $loaded" }
    $target
}

function Test-Redis {
    Wait-Until { (& redis-cli -p $script:RedisPort ping 2>$null) -eq 'PONG' } 'the restored redis to answer'
    [int](& redis-cli -p $script:RedisPort DBSIZE) -eq 1000000 -and (& redis-cli -p $script:RedisPort SET bench:after ok) -eq 'OK'
}

# A throwaway self-signed certificate for the TLS page server.
function New-BenchCertificate {
    $key = [System.Security.Cryptography.RSA]::Create(2048)
    $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=criups-bench', $key, 'SHA256', [System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
    $request.CreateSelfSigned([DateTimeOffset]::Now.AddMinutes(-5), [DateTimeOffset]::Now.AddHours(1))
}

# One run of a lazy-* workload on an image: a full restore, then lazy restores of the same image from the directory,
# a plain page server and a TLS one; each time the process checks all its memory at once (so it faults while the
# background fills) and must answer OK. Returns one sample per way of restoring.
function Measure-LazyRun([string]$Image, [int]$Target, [string]$Log, [System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate) {
    foreach ($mode in 'full', 'lazy-dir', 'lazy-server', 'lazy-server-tls') {
        $server = switch ($mode) {
            'lazy-server' { Start-LazyPageServer -ImagePath $Image }
            'lazy-server-tls' { Start-LazyPageServer -ImagePath $Image -Certificate $Certificate }
        }
        $lazy = @{}
        if ($mode -ne 'full') { $lazy.LazyPages = $true }
        if ($server) { $lazy.PageServer = "127.0.0.1:$($server.Port)" }
        if ($server.Tls) { $lazy.PageServerThumbprint = $server.CertificateThumbprint }
        try {
            # As for the other workloads: the restore is timed once the PID is free (reaping is the machine's time).
            Wait-Until { -not (Test-Path "/proc/$Target") } 'the previous process to be reaped' 30
            $clock = [Diagnostics.Stopwatch]::StartNew()
            $restored = Restore-Process -ImagePath $Image @lazy
            $running = $clock.Elapsed.TotalSeconds
            Register-TestProcess $restored.Id
            # A lazily restored 1 GiB checks itself at the pace its pages arrive: allow for a loaded machine.
            $clock.Restart()
            $check = Invoke-SelfCheck $Target $Log -TimeoutSeconds 300
            $checked = $clock.Elapsed.TotalSeconds
            $transfer = if ($restored.LazyRestore) { $restored | Wait-LazyRestore -Timeout 300 -ErrorAction Stop }
            if ($check -notmatch '^OK' -or ($transfer -and $transfer.State -ne 'Completed')) { throw "$mode did not verify: $check $($transfer.State)" }
            [pscustomobject]@{
                Mode = $mode; Running = $running; Checked = $checked
                AllPages = if ($transfer) { $transfer.Elapsed.TotalSeconds + $running } else { $running }
                PagesPerSecond = if ($transfer) { ($transfer.PagesOnFault + $transfer.PagesInBackground) / $transfer.Elapsed.TotalSeconds } else { 0 }
                FaultPagesPerSecond = if ($transfer.PagesOnFault) { $transfer.PagesOnFault / $transfer.FaultTime.TotalSeconds } else { 0 }
                BackgroundPagesPerSecond = if ($transfer.PagesInBackground) { $transfer.PagesInBackground / $transfer.BackgroundTime.TotalSeconds } else { 0 }
                PagesOnFault = [long]$transfer.PagesOnFault; PagesInBackground = [long]$transfer.PagesInBackground
            }
        }
        catch {
            throw "lazy restore benchmark, ${mode}: $_"
        }
        finally {
            Stop-TestProcesses
            if ($server) { $server | Stop-LazyPageServer }
        }
    }
}

# One cmdlet in a new PowerShell, as a script runs it: the module imported, then $Command timed inside. Returns what
# $Select makes of its result (a hashtable of plain values, as JSON), with Import, Seconds (the cmdlet) and Life (the
# PowerShell from start to exit).
function Invoke-InNewSession([string]$Command, [string]$Select) {
    $script = @"
`$ErrorActionPreference = 'Stop'
`$clock = [Diagnostics.Stopwatch]::StartNew()
Import-Module '$modulePath'
`$import = `$clock.Elapsed.TotalSeconds
`$clock.Restart()
`$result = $Command
`$seconds = `$clock.Elapsed.TotalSeconds
`$selected = & { $Select }
`$selected.Import = `$import; `$selected.Seconds = `$seconds
`$selected | ConvertTo-Json -Compress -Depth 3
"@
    $life = [Diagnostics.Stopwatch]::StartNew()
    $json = & (Join-Path $PSHOME 'pwsh') -NoProfile -NonInteractive -Command $script
    if ($LASTEXITCODE -ne 0) { throw "A new PowerShell failed to run ${Command}: $json" }
    $result = $json | ConvertFrom-Json
    $result | Add-Member Life $life.Elapsed.TotalSeconds
    $result
}

# One checkpoint and restore of a workload, the restored process verified. Without $Digests the checkpoint writes no
# criups-digests.img (the benchmark knob CRIUPS_BENCH_NO_DIGESTS), so its restore verifies nothing either.
function Measure-Run([string]$Name, $Spec, [int]$Run, [string]$ImageRoot, [bool]$Digests, [bool]$Cold) {
    $work = Join-Path $build "$Name-$Run"
    Remove-Item -Recurse -Force $work -ErrorAction Ignore
    $log = Join-Path $work 'bench.log'
    $image = Join-Path $ImageRoot "criups-bench-$PID-$Name-$Run"
    try {
        # Started inside the try: a workload that fails to start is stopped like any other.
        $target = if ($Spec.Program -eq 'redis') { Start-Redis $work } else {
            Start-TestTarget -Program (Build-Workload $Spec.Program) -Arguments (& $Spec.Arguments $log) -WorkDirectory $work -TimeoutSeconds $SetupSeconds
        }
        $env:CRIUPS_BENCH_NO_DIGESTS = if ($Digests) { $null } else { '1' }
        $clock = [Diagnostics.Stopwatch]::StartNew()
        try {
            $checkpoint = if ($Cold) {
                Invoke-InNewSession "Checkpoint-Process -Id $target -ImagePath '$image' -Force" `
                    '@{ HasDigests = $result.HasDigests; FrozenTime = @{ TotalSeconds = $result.FrozenTime.TotalSeconds }; MemoryBytes = $result.MemoryBytes; Processes = @($result.Processes | ForEach-Object { @{ Id = $_.Id } }) }'
            }
            else { Checkpoint-Process -Id $target -ImagePath $image -Force }
        }
        finally { $env:CRIUPS_BENCH_NO_DIGESTS = $null }
        $dumpSeconds = $Cold ? $checkpoint.Seconds : $clock.Elapsed.TotalSeconds
        if ($checkpoint.HasDigests -ne $Digests) { throw "$Name run ${Run}: the image has digests: $($checkpoint.HasDigests), expected $Digests" }
        # A killed tree's orphans are reaped by init, which on this VM takes up to seconds: that wait is
        # the machine's, not the restore's, so the restore is timed once every saved PID is free.
        Wait-Until { -not ($checkpoint.Processes.Id | Where-Object { Test-Path "/proc/$_" }) } 'the checkpointed processes to be reaped' 30
        $clock.Restart()
        $restored = if ($Cold) {
            Invoke-InNewSession "Restore-Process -ImagePath '$image'" `
                '@{ Id = $result.Id; RestoreTime = @{ TotalSeconds = $result.RestoreTime.TotalSeconds }; VerifyTime = @{ TotalSeconds = $result.VerifyTime.TotalSeconds } }'
        }
        else { Restore-Process -ImagePath $image }
        $restoreSeconds = $Cold ? $restored.Seconds : $clock.Elapsed.TotalSeconds
        Register-TestProcess $restored.Id
        $verified = if ($Spec.Program -eq 'redis') { Test-Redis } else { (Invoke-SelfCheck $target $log -TimeoutSeconds $SetupSeconds) -match '^OK' }
        if (-not $verified) { throw "$Name did not verify itself after the restore (run $Run)" }
        [pscustomobject]@{
            Digests = $Digests; Session = ($Cold ? 'cold' : 'warm'); Dump = $dumpSeconds; Frozen = $checkpoint.FrozenTime.TotalSeconds; Restore = $restoreSeconds
            RestoreEngine = $restored.RestoreTime.TotalSeconds; Verify = $restored.VerifyTime.TotalSeconds
            ImageBytes = Get-DirectorySize $image; MemoryBytes = $checkpoint.MemoryBytes
            Import = ($Cold ? ($checkpoint.Import + $restored.Import) / 2 : 0); Life = ($Cold ? ($checkpoint.Life + $restored.Life) / 2 : 0)
        }
    }
    finally {
        Stop-TestProcesses
        Remove-Item -Recurse -Force $image -ErrorAction Ignore
    }
}

# One dump and restore of a workload by CRIU (the binary given as -CriuPath), verified as CriuPS's are. Both commands
# are timed whole from here, as a user runs them (CRIU starts a new process per operation: it is always "cold");
# frozen is CRIU's "Freezing time" plus its "Frozen time" (--display-stats): CRIU starts its frozen clock once every
# task is seized, where a CriuPS FrozenTime counts from the first task stopped, and a task seized early stands still
# while the others are seized (threads-64: 2.5 ms of freezing, 13.3 ms frozen). Both are reported. The restored tree
# keeps its PIDs (criu restore -d detaches it).
function Measure-CriuRun([string]$Name, $Spec, [int]$Run, [string]$ImageRoot) {
    $work = Join-Path $build "$Name-$Run"
    Remove-Item -Recurse -Force $work -ErrorAction Ignore
    $log = Join-Path $work 'bench.log'
    $image = Join-Path $ImageRoot "criups-bench-$PID-$Name-$Run-criu"
    try {
        $target = if ($Spec.Program -eq 'redis') { Start-Redis $work } else {
            Start-TestTarget -Program (Build-Workload $Spec.Program) -Arguments (& $Spec.Arguments $log) -WorkDirectory $work -TimeoutSeconds $SetupSeconds
        }
        $tree = @(Get-ProcessTreeLayout $target | ForEach-Object { [int]$_.Split(' ')[0] })
        New-Item -ItemType Directory -Force $image | Out-Null
        $clock = [Diagnostics.Stopwatch]::StartNew()
        $dumpOutput = & $CriuPath dump -t $target -D $image --display-stats 2>&1
        $dumpSeconds = $clock.Elapsed.TotalSeconds
        if ($LASTEXITCODE -ne 0) { throw "criu dump of $Name failed (run $Run): $($dumpOutput | Select-Object -Last 5)" }
        $freezing = [regex]::Match(($dumpOutput -join "`n"), 'Freezing time: (\d+) us')
        $frozen = [regex]::Match(($dumpOutput -join "`n"), 'Frozen time: (\d+) us')
        $written = [regex]::Match(($dumpOutput -join "`n"), 'Memory pages written: (\d+)')
        if (-not $freezing.Success -or -not $frozen.Success -or -not $written.Success) { throw "criu dump of $Name printed no stats (run $Run): $($dumpOutput | Select-Object -Last 5)" }
        Wait-Until { -not ($tree | Where-Object { Test-Path "/proc/$_" }) } 'the processes CRIU dumped to be reaped' 30
        $imageBytes = Get-DirectorySize $image
        $clock.Restart()
        $restoreOutput = & $CriuPath restore -D $image -d --display-stats 2>&1
        $restoreSeconds = $clock.Elapsed.TotalSeconds
        if ($LASTEXITCODE -ne 0) { throw "criu restore of $Name failed (run $Run): $($restoreOutput | Select-Object -Last 5)" }
        Register-TestProcess $target
        $verified = if ($Spec.Program -eq 'redis') { Test-Redis } else { (Invoke-SelfCheck $target $log -TimeoutSeconds $SetupSeconds) -match '^OK' }
        if (-not $verified) { throw "$Name did not verify itself after CRIU's restore (run $Run)" }
        [pscustomobject]@{
            Digests = $true; Session = 'criu'; Dump = $dumpSeconds; Restore = $restoreSeconds
            Frozen = ([double]$freezing.Groups[1].Value + [double]$frozen.Groups[1].Value) / 1e6; CriuFrozenTime = [double]$frozen.Groups[1].Value / 1e6
            RestoreEngine = $restoreSeconds; Verify = 0; ImageBytes = $imageBytes; MemoryBytes = [long]$written.Groups[1].Value * 4096
            Import = 0; Life = 0
        }
    }
    finally {
        Stop-TestProcesses
        Remove-Item -Recurse -Force $image -ErrorAction Ignore
    }
}

# A row of the results: min and median of each figure over the samples of one workload.
function New-Row([string]$Medium, [string]$Workload, $Samples, $Limits) {
    $row = [pscustomobject]@{
        Medium = $Medium; Workload = $Workload
        DumpMin = ($Samples.Dump | Measure-Object -Minimum).Minimum; DumpMedian = Get-Median $Samples.Dump
        FrozenMin = ($Samples.Frozen | Measure-Object -Minimum).Minimum; FrozenMedian = Get-Median $Samples.Frozen
        RestoreMin = ($Samples.Restore | Measure-Object -Minimum).Minimum; RestoreMedian = Get-Median $Samples.Restore
        # The engine's own time, from reading the image to the process running again (the cmdlet adds its output).
        ResumedMin = ($Samples.RestoreEngine | Measure-Object -Minimum).Minimum; ResumedMedian = Get-Median $Samples.RestoreEngine
        # Of which: verifying the image against its digests, before anything was created.
        VerifyMedian = Get-Median $Samples.Verify
        ImageMiB = [Math]::Round(($Samples.ImageBytes | Measure-Object -Maximum).Maximum / 1MB, 1)
        DumpGBps = [Math]::Round(($Samples.MemoryBytes | Measure-Object -Maximum).Maximum / 1e9 / ($Samples.Dump | Measure-Object -Minimum).Minimum, 2)
        Limits = $Limits
    }
    $row.PSObject.Properties.Add([psnoteproperty]::new('DumpVsWrite', [Math]::Round($row.DumpGBps / $Limits.WriteGBps, 2)))
    # Restored memory is fresh memory: its first touch bounds the restore.
    $restoreGBps = ($Samples.MemoryBytes | Measure-Object -Maximum).Maximum / 1e9 / $row.RestoreMin
    $row.PSObject.Properties.Add([psnoteproperty]::new('RestoreGBps', [Math]::Round($restoreGBps, 2)))
    $row.PSObject.Properties.Add([psnoteproperty]::new('RestoreVsTouch', [Math]::Round($restoreGBps / ([Math]::Pow(2, 30) / 1e9 / $Limits.FirstTouchSPerGiB), 2)))
    $row
}

$results = [System.Collections.Generic.List[object]]::new()
foreach ($imageRoot in $ImageRoot) {
    $medium = if ((Get-Item $imageRoot).FullName -like '/dev/shm*') { 'tmpfs' } else { 'disk' }
    Write-Host "== images on $imageRoot ($medium)"
    $limits = [ordered]@{
        MemcpyGiBps       = Invoke-Limit 'memcpy' @('1024')
        WriteGBps         = Invoke-Limit 'write' @((Join-Path $imageRoot "criups-bench-$PID.tmp"), '1024')
        ReadGBps          = Invoke-Limit 'read' @((Join-Path $imageRoot "criups-bench-$PID.tmp"), '1024')
        FirstTouchSPerGiB = Invoke-Limit 'touch' @('1024')
    }
    Remove-Item (Join-Path $imageRoot "criups-bench-$PID.tmp") -ErrorAction Ignore
    Write-Host ("limits: memcpy {0:N1} GiB/s, write {1:N2} GB/s, read {2:N2} GB/s, first touch {3:N2} s/GiB" -f $limits.MemcpyGiBps, $limits.WriteGBps, $limits.ReadGBps, $limits.FirstTouchSPerGiB)

    foreach ($name in $Workload) {
        $spec = $workloads[$name]
        if ($name -eq 'redis-1m' -and -not (Get-Command redis-server -ErrorAction Ignore)) {
            Write-Warning 'redis-server is not installed: skipping redis-1m'
            continue
        }
        if ($spec.Lazy) {
            $certificate = New-BenchCertificate
            $lazySamples = foreach ($run in 1..$Runs) {
                $work = Join-Path $build "$name-$run"
                Remove-Item -Recurse -Force $work -ErrorAction Ignore
                $log = Join-Path $work 'bench.log'
                $image = Join-Path $imageRoot "criups-bench-$PID-$name-$run"
                try {
                    $target = Start-TestTarget -Program (Build-Workload $spec.Program) -Arguments (& $spec.Arguments $log) -WorkDirectory $work -TimeoutSeconds $SetupSeconds
                    Checkpoint-Process -Id $target -ImagePath $image -Force | Out-Null
                    Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed workload to end'
                    Measure-LazyRun $image $target $log $certificate
                }
                finally {
                    Stop-TestProcesses
                    Remove-Item -Recurse -Force $image -ErrorAction Ignore
                }
            }
            foreach ($group in $lazySamples | Group-Object Mode) {
                $row = [pscustomobject]@{
                    Medium = $medium; Workload = "$name/$($group.Name)"
                    RunningMin = ($group.Group.Running | Measure-Object -Minimum).Minimum; RunningMedian = Get-Median $group.Group.Running
                    CheckedMedian = Get-Median $group.Group.Checked
                    AllPagesMedian = Get-Median $group.Group.AllPages
                    PagesPerSecond = [Math]::Round((Get-Median $group.Group.PagesPerSecond))
                    FaultPagesPerSecond = [Math]::Round((Get-Median $group.Group.FaultPagesPerSecond))
                    BackgroundPagesPerSecond = [Math]::Round((Get-Median $group.Group.BackgroundPagesPerSecond))
                    PagesOnFault = Get-Median $group.Group.PagesOnFault
                    Limits = $limits
                }
                $results.Add($row)
                Write-Host ("{0,-28} running after {1:N3}/{2:N3} s, memory checked {3:N2} s later, every page in after {4:N2} s ({5:N0} pages/s), on fault {6:N0} pages/s ({7:N0} pages), background {8:N0} pages/s" -f $row.Workload,
                    $row.RunningMin, $row.RunningMedian, $row.CheckedMedian, $row.AllPagesMedian, $row.PagesPerSecond, $row.FaultPagesPerSecond, $row.PagesOnFault, $row.BackgroundPagesPerSecond)
            }
            continue
        }
        # With -CompareDigests each run is taken twice in a row, with and without digests, so that both see the
        # machine in the same state, first one and then the other in turn (what runs first in a pair is slower or
        # faster for reasons of its own: on disk, the writeback of the pair's first image).
        # Cold and warm runs alternate too, a cold one first (a warm session is warm from the second run on: the
        # first run of all warms it, and its sample counts, as a script's first checkpoint would).
        # The machine is shared: the load before and after a workload's runs says how far to trust its figures.
        $loadBefore = Get-LoadAverage
        $samples = foreach ($run in 1..$Runs) {
            $variants = if (-not $CompareDigests) { , $true } elseif ($run % 2) { $true, $false } else { $false, $true }
            foreach ($cold in @($Session | Sort-Object | ForEach-Object { $_ -eq 'Cold' })) {
                foreach ($digests in $variants) { Measure-Run $name $spec $run $imageRoot $digests $cold }
            }
            if ($CriuPath) { Measure-CriuRun $name $spec $run $imageRoot }
        }
        $loadAfter = Get-LoadAverage
        Write-Host ("{0,-24} load average (1 min) {1:N1} before its runs, {2:N1} after ({3} cores)" -f $name, $loadBefore, $loadAfter, [Environment]::ProcessorCount)
        $criuRow = $null
        foreach ($sessionGroup in $samples | Group-Object Session | Sort-Object { $_.Name -eq 'criu' }) {
            $sessionKind = $sessionGroup.Name
            $rows = foreach ($group in $sessionGroup.Group | Group-Object Digests) {
                $row = New-Row $medium ($group.Name -eq 'True' ? $name : "$name (no digests)") $group.Group $limits
                $row | Add-Member -NotePropertyName Session -NotePropertyValue $sessionKind
                $row | Add-Member -NotePropertyName ImportMedian -NotePropertyValue (Get-Median $group.Group.Import)
                $row | Add-Member -NotePropertyName LifeMedian -NotePropertyValue (Get-Median $group.Group.Life)
                $row | Add-Member -NotePropertyName Load -NotePropertyValue ([ordered]@{ Before = $loadBefore; After = $loadAfter; Cores = [Environment]::ProcessorCount })
                $results.Add($row)
                $note = $sessionKind -eq 'cold' ? (", in a new PowerShell: import {0:N2} s, its whole life {1:N2} s" -f $row.ImportMedian, $row.LifeMedian) : ''
                if ($sessionKind -eq 'criu') {
                    $criuRow = $row
                    $row | Add-Member -NotePropertyName CriuFrozenTimeMedian -NotePropertyValue (Get-Median $group.Group.CriuFrozenTime)
                    $note = ", frozen without its freezing (CRIU's own Frozen time) {0:N3} s" -f $row.CriuFrozenTimeMedian
                }
                Write-Host ("{0,-24} {1} dump {2:N2}/{3:N2} s (frozen {4:N2}/{5:N2}), restore {6:N2}/{7:N2} s (running after {8:N2}/{9:N2}, verifying {10:N3}), image {11} MiB{12}" -f $row.Workload, $sessionKind,
                    $row.DumpMin, $row.DumpMedian, $row.FrozenMin, $row.FrozenMedian, $row.RestoreMin, $row.RestoreMedian, $row.ResumedMin, $row.ResumedMedian, $row.VerifyMedian, $row.ImageMiB, $note)
                $row
            }
            if ($CompareDigests) {
                $with = $rows | Where-Object Workload -EQ $name
                $without = $rows | Where-Object Workload -NE $name
                Write-Host ("{0,-24} {1} digests cost the dump {2:+0.0;-0.0}% (median; frozen {3:+0.0;-0.0}%), the restore {4:+0.0;-0.0}% (verifying {5:N3} s)" -f $name, $sessionKind,
                    (100 * ($with.DumpMedian / $without.DumpMedian - 1)), (100 * ($with.FrozenMedian / $without.FrozenMedian - 1)),
                    (100 * ($with.RestoreMedian / $without.RestoreMedian - 1)), $with.VerifyMedian)
            }
        }
        # What a session's first operation costs over a warm one (the goal: dump within 1.5x, frozen within 1.2x).
        $coldRow = $results | Where-Object { $_.Workload -eq $name -and $_.Medium -eq $medium -and $_.Session -eq 'cold' }
        $warmRow = $results | Where-Object { $_.Workload -eq $name -and $_.Medium -eq $medium -and $_.Session -eq 'warm' }
        if ($coldRow -and $warmRow) {
            Write-Host ("{0,-24} cold vs warm (medians): dump {1:N2}x, frozen {2:N2}x, restore {3:N2}x" -f $name,
                ($coldRow.DumpMedian / $warmRow.DumpMedian), ($coldRow.FrozenMedian / $warmRow.FrozenMedian), ($coldRow.RestoreMedian / $warmRow.RestoreMedian))
        }
        # Where CriuPS stands against CRIU's medians of the same run: a ratio below 1 is ahead.
        foreach ($row in $results | Where-Object { $_.Workload -eq $name -and $_.Medium -eq $medium -and $_.Session -in 'cold', 'warm' -and $criuRow }) {
            $ratios = 'Dump', 'Frozen', 'Restore' | ForEach-Object { $row."${_}Median" / $criuRow."${_}Median" }
            $row | Add-Member -NotePropertyName VersusCriu -NotePropertyValue ([ordered]@{ Dump = $ratios[0]; Frozen = $ratios[1]; Restore = $ratios[2] })
            Write-Host ("{0,-24} {1} vs CRIU (medians, CriuPS / CRIU): dump {2:N2}, frozen {3:N2}, restore {4:N2}{5}" -f $name, $row.Session, $ratios[0], $ratios[1], $ratios[2],
                (($ratios | Where-Object { $_ -gt 1 }) ? ' (behind)' : ' (at or ahead)'))
        }
    }
}

$out = Join-Path $root 'out/bench'
New-Item -ItemType Directory -Force $out | Out-Null
$json = Join-Path $out ("bench-{0:yyyyMMdd-HHmmss}.json" -f (Get-Date))
$results | ConvertTo-Json -Depth 4 | Set-Content $json
$results | Where-Object DumpMin | Format-Table Medium, Workload, Session, DumpMin, DumpMedian, FrozenMin, FrozenMedian, RestoreMin, RestoreMedian, ResumedMin, ImageMiB, DumpGBps, DumpVsWrite, RestoreGBps, RestoreVsTouch | Out-Host
# The same as a Markdown table, as the README shows it.
Write-Host '| images | workload | session | dump min / median (s) | frozen min / median (s) | restore min / median (s) | image (MiB) | dump vs write | restore vs first touch |'
Write-Host '| --- | --- | --- | --- | --- | --- | --- | --- | --- |'
foreach ($row in $results | Where-Object DumpMin) {
    Write-Host ('| {0} | {1} | {11} | {2:N2} / {3:N2} | {4:N2} / {5:N2} | {6:N2} / {7:N2} | {8} | {9:N2} | {10:N2} |' -f $row.Medium, $row.Workload, $row.DumpMin, $row.DumpMedian,
        $row.FrozenMin, $row.FrozenMedian, $row.RestoreMin, $row.RestoreMedian, $row.ImageMiB, $row.DumpVsWrite, $row.RestoreVsTouch, $row.Session)
}
$results | Where-Object Workload -Like 'lazy*' | Format-Table Medium, Workload, RunningMin, RunningMedian, CheckedMedian, AllPagesMedian, PagesPerSecond, FaultPagesPerSecond, PagesOnFault, BackgroundPagesPerSecond | Out-Host
Write-Host "Results: $json"
Remove-Item -Recurse -Force $build -ErrorAction Ignore
