# The target is sacred: whatever instant the PowerShell running Checkpoint-Process, or criups-engine running the dump
# for it, dies at (SIGKILL: kill -9, the OOM killer), every process of the tree carries on exactly as before: alive,
# in the state it was in (running, or stopped if it was), traced by nobody, with its signal masks and its memory
# intact. The instants are the engine's test-only death points (CRIUPS_DIE_AT, spread over every phase: threads
# stopping, parked, an injected call or our code running in the process, memory being copied, images being written,
# write tracking being armed, the tree being let go) and random moments chosen by the test. What a death leaves (an
# injection area, a hidden image directory) the next checkpoint removes.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Module = (Get-Module CriuPS).Path
    $script:Pwsh = Join-Path $PSHOME 'pwsh'

    # A checkpoint (or pre-dump) in a PowerShell of its own, which dies at $DieAt ("point:N"), or is killed by the test
    # after $KillAfterMs; to a page server at $PageServer ("address:port") when one is named. Returns that PowerShell's
    # exit status.
    function Invoke-DyingCheckpoint([int]$Id, [string]$ImagePath, [string]$DieAt, [int]$KillAfterMs = -1, [switch]$PreDump, [switch]$TcpEstablished, [string]$PageServer) {
        $mode = if ($PreDump) { '-PreDump' } else { '-LeaveRunning' }
        $destination = if ($PageServer) { "-PageServer '$PageServer'" } else { "-ImagePath '$ImagePath' -Force" }
        $command = Get-DyingCheckpointCommand $Module "-Id $Id $destination $mode $(if ($TcpEstablished) { '-TcpEstablished' })"
        $errors = Join-Path $TestDrive 'dying.err'
        $env:CRIUPS_DIE_AT = $DieAt
        try {
            $process = Start-Process $Pwsh -ArgumentList '-NoProfile', '-NonInteractive', '-Command', $command -PassThru `
                -RedirectStandardOutput '/dev/null' -RedirectStandardError $errors
        }
        finally { $env:CRIUPS_DIE_AT = $null }
        if ($KillAfterMs -ge 0) {
            # The tool killed at once: the PowerShell and criups-engine, which runs the dump when it is started.
            Start-Sleep -Milliseconds $KillAfterMs
            $engines = Get-EngineProcesses $process.Id
            & kill -s KILL @engines $process.Id 2>$null
            Wait-Until { -not @($engines | Where-Object { Test-Path "/proc/$_" }) } 'the killed criups-engine to be gone'
        }
        if (-not $process.WaitForExit(60000)) { $process.Kill(); throw "the checkpoint at $DieAt did not end" }
        Get-CheckpointDeath $process $errors
    }

    # Every thread of every process of the tree: its state (R and S alike: a matter of the moment), tracer and mask.
    function Get-TreeThreads([int]$Root) {
        foreach ($line in Get-ProcessTreeLayout $Root) {
            $id = [int]$line.Split(' ')[0]
            foreach ($task in Get-ChildItem "/proc/$id/task" -ErrorAction Ignore) {
                $status = Get-Content "$($task.FullName)/status" -ErrorAction Ignore
                $state = (($status | Where-Object { $_ -like 'State:*' }) -split '\s+')[1] -replace '[RD]', 'S'
                $tracer = (($status | Where-Object { $_ -like 'TracerPid:*' }) -split '\s+')[1]
                $mask = (($status | Where-Object { $_ -like 'SigBlk:*' }) -split '\s+')[1]
                "$id/$($task.Name) $state tracer=$tracer blocked=$mask"
            }
        }
    }

    # Leftovers of a dead checkpoint in a process: the private rwx areas with MAP_NORESERVE of the injection.
    function Get-InjectionAreas([int]$Root) {
        foreach ($line in Get-ProcessTreeLayout $Root) {
            $id = $line.Split(' ')[0]
            Select-String -Path "/proc/$id/smaps" -Pattern '^[0-9a-f]+-[0-9a-f]+ rwxp 00000000 00:00 0' -Context 0, 30 -ErrorAction Ignore |
                Where-Object { ($_.Context.PostContext | Where-Object { $_ -like 'VmFlags:*' } | Select-Object -First 1) -match '\bnr\b' }
        }
    }

    # A stopped process left by a death while our code ran in it is back in its group stop before it could run its
    # way back to itself: its signals stay held until it is continued, which is the first thing it then undoes. Such
    # a process is continued and stopped again here, after which it must be exactly as before.
    function Resume-HeldStoppedThreads([int]$Root, [string[]]$Before) {
        $held = @(Get-TreeThreads $Root | Where-Object { $_ -match '^(\d+)/\d+ T ' -and $_ -notin $Before } | ForEach-Object { [int]$Matches[1] } | Select-Object -Unique)
        foreach ($id in $held) {
            $mask = ($Before | Where-Object { $_ -like "$id/$id *" }) -replace '.*blocked=', ''
            & kill -s CONT $id
            Wait-Until { (Get-Content "/proc/$id/status" | Where-Object { $_ -like 'SigBlk:*' }) -match $mask } "process $id to take its own signal mask back"
            & kill -s STOP $id
            Wait-Until { (Get-Content "/proc/$id/status" | Where-Object { $_ -like 'State:*' }) -match 'T \(stopped\)' } "process $id to stop again"
        }
    }

    # Kills the checkpointing PowerShell at each instant and checks the tree after every death.
    # $PageServer: makes a page server for each checkpoint and returns its "address:port" (a death after the commit
    # leaves a server with a committed image, which is final).
    function Assert-SurvivesDeaths([int]$Root, [string]$Log, [string]$Expected, [string[]]$Instants, [switch]$PreDump, [scriptblock]$PageServer) {
        $before = @(Get-TreeThreads $Root)
        $image = Join-Path $TestDrive "dying-$Root"
        foreach ($instant in $Instants) {
            $random = $instant -like 'random:*'
            $server = if ($PageServer) { & $PageServer }
            $exit = if ($random) { Invoke-DyingCheckpoint $Root $image '' -KillAfterMs ([int]$instant.Split(':')[1]) -PreDump:$PreDump -PageServer $server }
            else { Invoke-DyingCheckpoint $Root $image $instant -PreDump:$PreDump -PageServer $server }
            if (-not $random) { $exit | Should -Be 'SIGKILL' -Because "the checkpoint must die at $instant" }
            Resume-HeldStoppedThreads $Root $before
            @(Get-TreeThreads $Root) | Should -Be $before -Because "every thread must carry on as before after a death at $instant"
            Invoke-SelfCheck $Root $Log | Should -Match $Expected -Because "the tree verifies itself after a death at $instant"
        }
        # The next checkpoint goes through and removes what the deaths left behind.
        if ($PageServer) { Checkpoint-Process -Id $Root -PageServer (& $PageServer) -LeaveRunning | Out-Null }
        else { Checkpoint-Process -Id $Root -ImagePath $image -Force -LeaveRunning -PreDump:$PreDump | Out-Null }
        @(Get-InjectionAreas $Root).Count | Should -Be 0
        @(Get-ChildItem -Force (Split-Path $image) -Filter ".$(Split-Path $image -Leaf).criups-*").Count | Should -Be 0
        @(Get-TreeThreads $Root) | Should -Be $before
        Invoke-SelfCheck $Root $Log | Should -Match $Expected
    }
}

Describe 'A checkpoint whose PowerShell is killed' {
    AfterEach { Stop-TestProcesses }

    It 'leaves a single process running as before, at every phase and at random moments' {
        $work = Join-Path $TestDrive 'single'
        $target = Start-TestTarget -Program (Get-TestTarget 'selfcheck') -Arguments 'sleep', $work -WorkDirectory $work
        Assert-SurvivesDeaths $target (Join-Path $work 'selfcheck.log') "^OK counter=\d+ pid=$target$" @(
            'stopped', 'parked', 'call:1', 'call:2', 'call:3', 'call:4', 'code:1', 'code:2', 'code:3', 'code:4', 'copy:1', 'copy:4',
            'write:1', 'write:6', 'write:12', 'release:1',
            'random:600', 'random:900', 'random:1200', 'random:1500', 'random:1800')
    }

    It 'leaves a process of 16 threads in several system calls running as before' {
        $work = Join-Path $TestDrive 'threads'
        $target = Start-TestTarget -Program (Get-TestTarget 'threads') -Arguments $work -WorkDirectory $work
        Assert-SurvivesDeaths $target (Join-Path $work 'threads.log') "^OK threads=16 pid=$target$" @(
            'stopped:9', 'parked:16', 'call:3', 'call:5', 'code:5', 'code:16', 'copy:1', 'write:12', 'release:8', 'random:1000')
    }

    It 'leaves a tree of processes, with a stopped one and a zombie, as it was' {
        $work = Join-Path $TestDrive 'tree'
        $target = Start-TestTarget -Program (Get-TestTarget 'tree') -Arguments $work -WorkDirectory $work
        Assert-SurvivesDeaths $target (Join-Path $work 'tree.log') "^OK processes=\d+ pid=$target$" @(
            'stopped:4', 'parked:8', 'call:5', 'call:30', 'code:10', 'code:32', 'copy:4', 'write:40', 'release:5', 'random:1100')
    }

    It 'leaves a pre-dumped process running as before, its write tracking included' {
        $work = Join-Path $TestDrive 'predump'
        $target = Start-TestTarget -Program (Get-TestTarget 'selfcheck') -Arguments 'sleep', $work -WorkDirectory $work
        Assert-SurvivesDeaths $target (Join-Path $work 'selfcheck.log') "^OK counter=\d+ pid=$target$" -PreDump @(
            'stopped', 'parked', 'call:2', 'call:4', 'track:1', 'code:1', 'release:1', 'copy:1', 'copy:4', 'write:3', 'random:900')
    }

    It 'leaves a process checkpointed to a page server running as before, and the next checkpoint goes through' {
        $work = Join-Path $TestDrive 'pageserver'
        $target = Start-TestTarget -Program (Get-TestTarget 'selfcheck') -Arguments 'sleep', $work -WorkDirectory $work
        $servers = [Collections.Generic.List[object]]::new()
        $newServer = {
            $server = Start-LazyPageServer -ImagePath (Join-Path $work "received-$($servers.Count)") -FrameTimeout 5 -IdleTimeout 5
            $servers.Add($server)
            "127.0.0.1:$($server.Port)"
        }
        try {
            Assert-SurvivesDeaths $target (Join-Path $work 'selfcheck.log') "^OK counter=\d+ pid=$target$" -PageServer $newServer @(
                'stopped', 'parked', 'call:2', 'code:1', 'copy:1', 'write:3', 'release:1', 'random:900')
            Test-Path (Join-Path $servers[-1].ImagePath 'inventory.img') | Should -BeTrue -Because 'the last checkpoint was committed'
        }
        finally { $servers | Stop-LazyPageServer }
    }

    It 'leaves the process running as before when only the PowerShell dies: criups-engine, cut off, lets it go and removes its image' {
        $work = Join-Path $TestDrive 'orphaned'
        $log = Join-Path $work 'memhog.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'memhog') -Arguments '512', $log -WorkDirectory $work
        $image = Join-Path $TestDrive 'orphaned-image'
        $command = Get-DyingCheckpointCommand $Module "-Id $target -ImagePath '$image'"
        $process = Start-Process $Pwsh -ArgumentList '-NoProfile', '-NonInteractive', '-Command', $command -PassThru -RedirectStandardOutput '/dev/null'
        # The PowerShell dies while criups-engine holds the process frozen: the engine is stopped there (SIGSTOP), so
        # that the death falls inside the dump whatever the machine's speed, and goes on once the PowerShell is gone.
        $engine = 0
        Wait-Until {
            $script:engine = @(Get-EngineProcesses $process.Id)[0]
            $script:engine -and (Get-Content "/proc/$target/status" -ErrorAction Ignore) -match "^TracerPid:\s+$($script:engine)$"
        } 'criups-engine to seize the process' 30
        $engine = $script:engine
        & kill -s STOP $engine
        & kill -s KILL $process.Id
        $process.WaitForExit(10000) | Should -BeTrue
        & kill -s CONT $engine
        Wait-Until { -not (Test-Path "/proc/$engine") } 'criups-engine to end, cut off from its PowerShell' 30
        (Get-Content "/proc/$target/status" | Where-Object { $_ -like 'TracerPid:*' }) | Should -Match '\s0$'
        (Get-Content "/proc/$target/status" | Where-Object { $_ -like 'State:*' }) | Should -Not -Match 'T \(stopped\)|t \(tracing stop\)'
        Test-Path $image | Should -BeFalse -Because 'the cancelled checkpoint removed what it wrote'
        @(Get-ChildItem -Force $TestDrive -Filter '.orphaned-image.criups-*') | Should -BeNullOrEmpty
        Send-Signal $target USR1
        Wait-Until { (Test-Path $log) -and (Get-Content $log) -match "^OK pid=$target$" } 'memhog to verify its memory' 30
    }

    It 'leaves a TCP server with an established connection serving it: no repair mode, no network lock left' {
        $work = Join-Path $TestDrive 'tcp'
        $python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source
        $stream = Join-Path (Get-RepositoryRoot) 'Tests/Targets/tcpstream.py'
        $server = Start-TestTarget -Program $python -Arguments $stream, 'server', $work, '127.0.0.1' -WorkDirectory $work
        $port = [int](Get-Content (Join-Path $work 'port'))
        $clientWork = Join-Path $TestDrive 'tcp-client'
        $client = Start-TestTarget -Program $python -Arguments $stream, 'client', $clientWork, '127.0.0.1', "$port", "$(48MB)" -WorkDirectory $clientWork
        $progress = Join-Path $clientWork 'progress'
        $received = { if (Test-Path $progress) { [long]((Get-Content $progress -Raw).Trim().Split(' ')[1]) } else { 0L } }
        Wait-Until { (& $received) -gt 100KB } 'the echo to flow'
        $image = Join-Path $TestDrive 'tcp-image'
        foreach ($instant in 'call:2', 'code:3', 'write:4', 'release:1', 'copy:1') {
            $tables = @(Get-LockTable)
            Invoke-DyingCheckpoint $server $image $instant -TcpEstablished | Should -Be 'SIGKILL' -Because "the checkpoint must die at $instant"
            @(Get-LockTable | Where-Object { $_ -notin $tables }) | Should -BeNullOrEmpty -Because "the kernel lifts the lock of a session that died at $instant"
            $before = & $received
            Wait-Until { (& $received) -gt $before + 64KB } "the echo to flow on after a death at $instant"
        }
        # The client checks every byte it gets back as it reads, and logs the first one wrong, or an error, at once.
        Test-ProcessAlive $client | Should -BeTrue
        Get-Content (Join-Path $clientWork 'client.log') -ErrorAction Ignore | Should -BeNullOrEmpty
    }
}
