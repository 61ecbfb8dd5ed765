# End to end: checkpoint and restore of real processes that verify their own state afterwards.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:SelfCheck = Get-TestTarget 'selfcheck'

    # Checkpoints the process into $TestDrive/<image> and restores it; fails unless both happened, the same PID back.
    function Invoke-CheckpointRestore([int]$Target, [string]$Image) {
        $restored = Checkpoint-Process -Id $Target -ImagePath (Join-Path $TestDrive $Image) -ErrorAction Stop | Restore-Process -ErrorAction Stop
        Register-TestProcess $Target
        $restored.Id | Should -Be $Target
    }
}

Describe 'Checkpoint-Process and Restore-Process on a self-checking C program' {
    AfterEach { Stop-TestProcesses }

    It 'saves and restores everything the program holds (<Mode> mode)' -ForEach @(
        @{ Mode = 'sleep' }  # checkpointed inside nanosleep
        @{ Mode = 'read' }   # checkpointed inside a blocking read that must restart
        @{ Mode = 'pause' }  # checkpointed while waiting for a signal
    ) {
        $work = Join-Path $TestDrive "selfcheck-$Mode"
        $log = Join-Path $work 'selfcheck.log'
        $target = Start-TestTarget -Program $SelfCheck -Arguments $Mode, $work -WorkDirectory $work
        Invoke-SelfCheck $target $log | Should -Match "^OK counter=\d+ pid=$target$"
        # Every area at its address with its protection, offset and file; the argument and environment strings.
        $maps = Get-Content "/proc/$target/maps"
        $arguments = [Convert]::ToBase64String([IO.File]::ReadAllBytes("/proc/$target/cmdline"))
        $environment = [Convert]::ToBase64String([IO.File]::ReadAllBytes("/proc/$target/environ"))

        $image = Get-Process -Id $target | Checkpoint-Process -ImagePath (Join-Path $TestDrive "image-$Mode")
        $image.RootProcessId | Should -Be $target
        $image.Name | Should -Be 'selfcheck'
        $image.ProcessCount | Should -Be 1
        $image.ThreadCount | Should -Be 1
        $image.MemoryBytes | Should -BeGreaterThan 24MB
        $image.Pages | Should -Be ($image.MemoryBytes / 4096)
        $image.FrozenTime | Should -BeGreaterThan ([TimeSpan]::Zero)
        $image.TotalTime | Should -BeGreaterOrEqual $image.FrozenTime
        $image.Kernel | Should -Be (Get-Content /proc/sys/kernel/osrelease -Raw).Trim()
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'

        $restored = $image | Restore-Process
        Register-TestProcess $restored.Id
        $restored.Id | Should -Be $target
        $restored.Name | Should -Be 'selfcheck'
        $restored.Parent.Id | Should -Be $PID
        $restored.RestoreTime | Should -BeGreaterThan ([TimeSpan]::Zero)
        $restored.ImagePath | Should -Be $image.Path
        $restored.pstypenames[0] | Should -Be 'CriuPS.RestoredProcess'
        $restored.psobject.Properties['ExitStatus'].MemberType | Should -Be 'CodeProperty'
        # The view adds its notes unchecked (RestoredProcessView): none may hide a property of Process or of its type data.
        foreach ($property in (Get-Process -Id $PID).psobject.Properties) {
            $restored.psobject.Properties[$property.Name].MemberType | Should -Be $property.MemberType -Because $property.Name
        }
        Get-Content "/proc/$target/maps" | Should -Be $maps
        [Convert]::ToBase64String([IO.File]::ReadAllBytes("/proc/$target/cmdline")) | Should -Be $arguments
        [Convert]::ToBase64String([IO.File]::ReadAllBytes("/proc/$target/environ")) | Should -Be $environment

        $first = Invoke-SelfCheck $target $log
        $first | Should -Match "^OK counter=(\d+) pid=$target$"
        $counter = [int]($first -replace '.*counter=(\d+).*', '$1')
        Start-Sleep -Milliseconds 200
        $second = Invoke-SelfCheck $target $log
        [int]($second -replace '.*counter=(\d+).*', '$1') | Should -BeGreaterThan $counter
        Invoke-SelfCheck $target $log 'TERM' | Should -Match "^EXIT OK counter=\d+ pid=$target$"
        Wait-Until { -not (Test-ProcessAlive $target) } 'the restored process to exit'
        Wait-Until { $null -ne $restored.ExitStatus } 'the session''s reaper to record its exit status'
        $restored.ExitStatus | Should -Be 0
    }

    It 'writes the image directory with 0700 and its files with 0600, with logs of both runs' {
        $work = Join-Path $TestDrive 'perms'
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        $path = Join-Path $TestDrive 'image-perms'
        Checkpoint-Process -Id $target -ImagePath $path | Out-Null
        Get-ModeBits $path | Should -Be '700'
        foreach ($file in Get-ChildItem $path) { Get-ModeBits $file.FullName | Should -Be '600' -Because $file.Name }
        Join-Path $path 'dump.log' | Should -FileContentMatch 'Saving memory'
        # Each step of the checkpoint named as it begins, in the order DumpSteps.Checkpoint gives (those for options
        # not asked for left out).
        Get-LoggedSteps (Join-Path $path 'dump.log') 'dump' | Should -Be 'engine ready', 'target', 'areas read ahead', 'tree', 'image', 'areas in hand', 'freeze',
            'attach', 'process state', 'memory', 'terminals and cpu', 'images', 'commit', 'write tracking ended', 'end of the tree'
        # No walk over every page while frozen: maps at the freeze, VmFlags from smaps read ahead, confirmed before the commit.
        Join-Path $path 'dump.log' | Should -FileContentMatch "areas of ${target}: \d+ read from maps at the freeze, their VmFlags from smaps read ahead \(same layout\)"
        Join-Path $path 'dump.log' | Should -FileContentMatch "areas of ${target}: VmFlags read again after the freeze are those read ahead of it"
        @(Get-ChildItem (Split-Path $path) -Force -Filter '.image-perms.criups-*') | Should -BeNullOrEmpty
        $restored = Restore-Process $path
        Register-TestProcess $restored.Id
        Join-Path $path 'restore.log' | Should -FileContentMatch 'Restoring memory'
        # Each step of the restore named as it begins, in the order RestoreSteps.Order gives: the images verified,
        # read and checked before anything is made.
        Get-LoggedSteps (Join-Path $path 'restore.log') 'restore' | Should -Be 'verification', 'images', 'checks',
            'network namespace', 'files of the engine', 'processes', 'namespaces', 'memory', 'files',
            'signal handlers and attributes', 'fs state', 'threads and credentials', 'file owners', 'cgroups', 'page digests', 'final state', 'release'
    }

    It 'fails, and leaves the process running as before, when the process changes the flags of an area (madvise) between the read ahead of the freeze and the freeze' {
        # bgflags sets MADV_DONTFORK over one more of its 8192 one-page areas every millisecond: the layout stays the
        # same, the flags read ahead of the freeze are not those read again while frozen, and the dump cannot know
        # which the freeze saw.
        $work = Join-Path $TestDrive 'flags'
        $id = Start-TestTarget -Program (Get-TestTarget 'bgflags') -Arguments 8192, $work -WorkDirectory $work
        $log = Join-Path $work 'bgflags.log'
        Invoke-SelfCheck $id $log | Should -Match "^OK changed=[1-9]\d* pid=$id$"
        Checkpoint-Process -Id $id -ImagePath (Join-Path $TestDrive 'flags-image') -ErrorVariable errors -ErrorAction SilentlyContinue |
            Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Match '^DumpFailed,'
        $errors[0].Exception.Message | Should -Match "The checkpoint of process $id failed: its area .* shows the flags '[^']*\bdc\b[^']*' where it showed '[^']*' ahead of the freeze \(madvise"
        Test-Path (Join-Path $TestDrive 'flags-image') | Should -BeFalse
        (Get-Content "/proc/$id/status" | Where-Object { $_ -like 'TracerPid:*' }) | Should -Match '\s0$'
        $changed = [int]((Invoke-SelfCheck $id $log) -replace '^OK changed=(\d+) .*$', '$1')
        Wait-Until { (Invoke-SelfCheck $id $log) -match "^OK changed=(\d+) pid=$id$" -and [int]$Matches[1] -gt $changed } "process $id to change more areas, every one intact" -TimeoutSeconds 60
    }

    It 'leaves the process running with -LeaveRunning, and the image restores it later' {
        $work = Join-Path $TestDrive 'leave'
        $log = Join-Path $work 'selfcheck.log'
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-leave') -LeaveRunning
        Test-ProcessAlive $target | Should -BeTrue
        Invoke-SelfCheck $target $log | Should -Match "^OK counter=\d+ pid=$target$"
        Invoke-SelfCheck $target $log | Should -Match "^OK counter=\d+ pid=$target$"

        Send-Signal $target 'KILL'
        Wait-Until { -not (Test-ProcessAlive $target) } 'the original to end'
        $restored = Restore-Process -ImagePath $image.Path
        Register-TestProcess $restored.Id
        Invoke-SelfCheck $target $log | Should -Match "^OK counter=\d+ pid=$target$"
    }

    It 'checkpoints a restored process again (no trace of the restore is left in it)' {
        $work = Join-Path $TestDrive 'twice'
        $log = Join-Path $work 'selfcheck.log'
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'read', $work -WorkDirectory $work
        Invoke-CheckpointRestore $target 'twice-1'
        $again = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'twice-2')
        $again.MemoryBytes | Should -BeGreaterThan 24MB
        Restore-Process $again.Path | Out-Null
        Invoke-SelfCheck $target $log | Should -Match "^OK counter=\d+ pid=$target$"
        Invoke-SelfCheck $target $log 'TERM' | Should -Match '^EXIT OK'
    }

    It 'restores with -Detach as a child of init rather than of this session' {
        $work = Join-Path $TestDrive 'detach'
        $log = Join-Path $work 'selfcheck.log'
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        $restored = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-detach') | Restore-Process -Detach
        Register-TestProcess $target
        $restored.Detached | Should -BeTrue
        $restored.Parent.Id | Should -Not -Be $PID
        Invoke-SelfCheck $target $log | Should -Match "^OK counter=\d+ pid=$target$"
    }

    It 'emits a process that composes: Get-Process, Wait-Process, Stop-Process' {
        $work = Join-Path $TestDrive 'stop'
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-stop')
        $restored = Restore-Process $image.Path
        Register-TestProcess $target
        $restored | Should -BeOfType System.Diagnostics.Process
        $restored.ImagePath | Should -Be $image.Path
        $restored.MemoryBytes | Should -Be $image.MemoryBytes
        ($restored | Get-Process).Id | Should -Be $target
        { $restored | Wait-Process -Timeout 1 -ErrorAction Stop } | Should -Throw -ErrorId 'ProcessNotTerminated,Microsoft.PowerShell.Commands.WaitProcessCommand'
        $restored | Stop-Process
        # Reaped by the session's reaper thread, which may come a moment after the process is a zombie.
        Wait-Until { $null -ne $restored.ExitStatus } 'the restored process to be stopped and reaped'
        $restored.ExitStatus | Should -Be 137 -Because 'SIGKILL ends it, as 128 + 9'
    }

    It 'reaps every restored child with one thread of this session, whatever their number' {
        $restored = foreach ($name in 'reaped-a', 'reaped-b', 'reaped-c') {
            $work = Join-Path $TestDrive $name
            $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
            $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive "image-$name")
            Wait-Until { -not (Test-ProcessAlive $target) } 'the process to be gone'
            Restore-Process $image.Path
            Register-TestProcess $target
        }
        # Three restored children alive at once: one thread waits for them all (it was a thread each).
        @($restored | Where-Object { Test-ProcessAlive $_.Id }).Count | Should -Be 3
        # A thread of the pool may end between the listing and the read of its name: not the reaper, whatever it was.
        @(Get-ChildItem "/proc/$PID/task" | Where-Object { (Get-Content "$($_.FullName)/comm" -ErrorAction Ignore) -like 'CriuPS reaper*' }).Count | Should -Be 1
        $restored | Stop-Process
        foreach ($process in $restored) {
            Wait-Until { $null -ne $process.ExitStatus } "restored process $($process.Id) to be reaped"
            $process.ExitStatus | Should -Be 137
        }
    }

    It 'checkpoints a process this session started with Start-Process (a shell job), without confusing PowerShell about it' {
        $work = Join-Path $TestDrive 'started'
        New-Item -ItemType Directory $work | Out-Null
        $log = Join-Path $work 'selfcheck.log'
        $process = Start-Process $SelfCheck -ArgumentList 'sleep', $work -WorkingDirectory $work -PassThru
        Register-TestProcess $process.Id
        Wait-Until { Test-Path (Join-Path $work 'ready') } 'selfcheck to start'
        foreach ($round in 1..3) {
            $image = $process | Checkpoint-Process -ImagePath (Join-Path $TestDrive "started-$round") -LeaveRunning -ShellJob -ErrorAction Stop
            $image.RootProcessId | Should -Be $process.Id
            $process.HasExited | Should -BeFalse -Because 'ptrace stops are not exits'
            Invoke-SelfCheck $process.Id $log | Should -Match '^OK'
        }
        $restored = $process | Checkpoint-Process -ImagePath (Join-Path $TestDrive 'started-last') -ShellJob -ErrorAction Stop |
            Restore-Process -ShellJob -ErrorAction Stop
        $process.WaitForExit(5000) | Should -BeTrue -Because 'the checkpointed original ended'
        (Get-Content "/proc/$($restored.Id)/stat" -Raw).Split(') ')[1].Split(' ')[3] | Should -Be (Get-Content "/proc/$PID/stat" -Raw).Split(') ')[1].Split(' ')[3] -Because 'a shell job joins our session'
        Invoke-SelfCheck $process.Id $log | Should -Match "^OK counter=\d+ pid=$($process.Id)$"
    }

    It 'refuses a shell job without -ShellJob, before freezing anything' {
        $work = Join-Path $TestDrive 'shelljob'
        New-Item -ItemType Directory $work | Out-Null
        $process = Start-Process $SelfCheck -ArgumentList 'sleep', $work -WorkingDirectory $work -PassThru
        Register-TestProcess $process.Id
        Wait-Until { Test-Path (Join-Path $work 'ready') } 'selfcheck to start'
        Checkpoint-Process -Id $process.Id -ImagePath (Join-Path $TestDrive 'shelljob-image') -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be 'ShellJobRequired,CriuPS.Cmdlets.CheckpointProcessCommand'
        $errors[0].ErrorDetails.RecommendedAction | Should -Match '-ShellJob'
        $process.HasExited | Should -BeFalse
    }

    It 'does nothing with -WhatIf' {
        $work = Join-Path $TestDrive 'whatif'
        $log = Join-Path $work 'selfcheck.log'
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        $path = Join-Path $TestDrive 'image-whatif'
        Checkpoint-Process -Id $target -ImagePath $path -WhatIf | Should -BeNullOrEmpty
        Test-Path $path | Should -BeFalse
        Invoke-SelfCheck $target $log | Should -Match '^OK'
        # Restored for real, the image would meet its process still running (PidInUse); with -WhatIf nothing is tried.
        $image = Checkpoint-Process -Id $target -ImagePath $path -LeaveRunning
        Restore-Process $image.Path -WhatIf -ErrorVariable errors | Should -BeNullOrEmpty
        $errors | Should -BeNullOrEmpty
        Get-ChildItem $image.Path -Filter 'restore.log' | Should -BeNullOrEmpty
        Invoke-SelfCheck $target $log | Should -Match '^OK'
    }
}

Describe 'Threads' {
    AfterEach { Stop-TestProcesses }

    It 'restores 16 threads with their TIDs, TLS, names, masks and counters, whatever system call each was in' {
        $work = Join-Path $TestDrive 'threads'
        $log = Join-Path $work 'threads.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'threads') -Arguments $work -WorkDirectory $work
        Invoke-SelfCheck $target $log | Should -Match "^OK threads=16 pid=$target$"
        $tids = (Get-ChildItem "/proc/$target/task").Name | Sort-Object

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-threads')
        $image.ThreadCount | Should -Be 17
        ($image.Processes[0].Threads.Name | Where-Object { $_ -like 'worker-*' }).Count | Should -Be 16
        $restored = Restore-Process $image.Path
        Register-TestProcess $target
        $restored.Threads.Count | Should -Be 17
        (Get-ChildItem "/proc/$target/task").Name | Sort-Object | Should -Be $tids
        Invoke-SelfCheck $target $log | Should -Match "^OK threads=16 pid=$target$"
        Invoke-SelfCheck $target $log 'TERM' | Should -Match "^EXIT OK threads=16 pid=$target$"
    }
}

Describe 'Process trees' {
    AfterEach { Stop-TestProcesses }

    It 'restores a tree of 10 processes: pipes and a socketpair between them, sessions and groups, a stopped process and a zombie' {
        $work = Join-Path $TestDrive 'tree'
        $log = Join-Path $work 'tree.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'tree') -Arguments $work -WorkDirectory $work
        Invoke-SelfCheck $target $log | Should -Match "^OK processes=10 pid=$target$"
        $layout = Get-ProcessTreeLayout $target
        $layout.Count | Should -Be 10
        $pids = $layout | ForEach-Object { [int]$_.Split(' ')[0] }

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-tree')
        $image.ProcessCount | Should -Be 10
        Assert-ReadsAsReturned $image
        ($image.Processes | Where-Object State -EQ 'zombie').Count | Should -Be 1
        ($image.Processes | Where-Object State -EQ 'stopped').Count | Should -Be 1
        foreach ($id in $pids) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id of the tree to end" }

        Restore-Process $image.Path | Out-Null
        $pids | ForEach-Object { Register-TestProcess $_ }
        $restored = Get-ProcessTreeLayout $target
        ($restored | Select-Object -Skip 1) | Should -Be ($layout | Select-Object -Skip 1) -Because 'every process is back with its parent, group, session and state'
        Invoke-SelfCheck $target $log | Should -Match "^OK processes=10 pid=$target$"
        Invoke-SelfCheck $target $log 'TERM' | Should -Match "^EXIT OK processes=10 pid=$target$"
    }

    It 'checkpoints what -Name matches once, children with their parent, and reports a name that matches nothing' {
        # A copy of the tree under a name of its own: its ten processes (a zombie and a stopped one too) are named alike.
        $name = 'named' + (Get-Random -Minimum 1000 -Maximum 9999)
        $program = Join-Path $TestDrive $name
        Copy-Item (Get-TestTarget 'tree') $program
        $work = Join-Path $TestDrive 'named'
        $target = Start-TestTarget -Program $program -Arguments $work -WorkDirectory $work
        Invoke-SelfCheck $target (Join-Path $work 'tree.log') | Should -Match "^OK processes=10 pid=$target$"
        @(Get-Process -Name $name).Count | Should -Be 10

        $images = @(Checkpoint-Process -Name "$($name.Substring(0, 7))*" -ImagePath (Join-Path $TestDrive 'image-named') -LeaveRunning -ErrorVariable errors)
        $errors | Should -BeNullOrEmpty
        $images.Count | Should -Be 1
        $images[0].RootProcessId | Should -Be $target
        $images[0].ProcessCount | Should -Be 10

        Checkpoint-Process -Name "$name-none" -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be 'ProcessNotFound,CriuPS.Cmdlets.CheckpointProcessCommand'
    }

    It 'keeps a descriptor table and fs information shared by processes cloned with CLONE_FILES and CLONE_FS, and not shared by the others' {
        $work = Join-Path $TestDrive 'sharedtables'
        $log = Join-Path $work 'sharedtables.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'sharedtables') -Arguments $work -WorkDirectory $work
        Invoke-SelfCheck $target $log | Should -Match "^OK processes=4 pid=$target$"
        $pids = Get-ProcessTreeLayout $target | ForEach-Object { [int]$_.Split(' ')[0] }

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-sharedtables')
        $image.ProcessCount | Should -Be 4
        Assert-ReadsAsReturned $image
        foreach ($id in $pids) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id of the tree to end" }
        # One descriptor table for the parent and its CLONE_FILES child: one fdinfo image for the two.
        @(Get-ChildItem $image.Path -Filter 'fdinfo-*.img').Count | Should -Be 3

        Restore-Process $image.Path | Out-Null
        $pids | ForEach-Object { Register-TestProcess $_ }
        Invoke-SelfCheck $target $log | Should -Match "^OK processes=4 pid=$target$"
    }
}

Describe 'Who a process is and where it lives' {
    AfterEach { Stop-TestProcesses }

    It 'restores a chrooted process with other uids, gids, groups, capabilities and securebits, with the parent-death signal and dumpable flag a change of credentials resets' {
        $work = Join-Path $TestDrive 'identity'
        $log = Join-Path $work 'identity.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'identity') -Arguments $work -WorkDirectory $work
        Invoke-SelfCheck $target $log | Should -Match "^OK pid=$target$"
        function Get-Identity { (Get-Content "/proc/$target/status" | Select-String '^(Uid|Gid|Groups|Cap\w+|NoNewPrivs):').Line }
        $before = Get-Identity
        (Get-Item "/proc/$target/root").LinkTarget | Should -Be $work

        Invoke-CheckpointRestore $target 'image-identity'
        Invoke-SelfCheck $target $log | Should -Match "^OK pid=$target$"
        Get-Identity | Should -Be $before
        (Get-Item "/proc/$target/root").LinkTarget | Should -Be $work
        (Get-Item "/proc/$target/cwd").LinkTarget | Should -Be (Join-Path $work 'inner')
    }
}

Describe 'What a process and each of its threads set for themselves' {
    AfterEach { Stop-TestProcesses }

    It 'keeps the personality, child subreaper and interval timers, and each thread''s rseq, robust list, clear_child_tid, scheduling, sigaltstack and queued signal' {
        $work = Join-Path $TestDrive 'attributes'
        $log = Join-Path $work 'attributes.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'attributes') -Arguments $work -WorkDirectory $work
        Invoke-SelfCheck $target $log | Should -Match "^OK pid=$target$"
        Invoke-CheckpointRestore $target 'image-attributes'
        Invoke-SelfCheck $target $log | Should -Match "^OK pid=$target$"
    }
}

Describe 'POSIX timers' {
    AfterEach { Stop-TestProcesses }

    It 'keeps their ids, clocks, notifications (process, thread, none) and remaining times' {
        $work = Join-Path $TestDrive 'timers'
        $log = Join-Path $work 'timers.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'timers') -Arguments $work -WorkDirectory $work
        Invoke-SelfCheck $target $log | Should -Match "^OK pid=$target$"
        # One block per timer (id, signal and value, notification and target, clock); the kernel lists them in creation order.
        function Get-Timers { (Get-Content "/proc/$target/timers" -Raw) -split '(?=ID: )' | Where-Object { $_ } | Sort-Object }
        $before = Get-Timers
        Invoke-CheckpointRestore $target 'image-timers'
        Invoke-SelfCheck $target $log | Should -Match "^OK pid=$target$"
        Get-Timers | Should -Be $before
    }
}

Describe 'Seccomp filters' {
    AfterEach { Stop-TestProcesses }

    It 'restores each thread''s chain of filters, in order and with their flags, even filters that forbid what the restore uses' {
        $work = Join-Path $TestDrive 'seccomp'
        $log = Join-Path $work 'seccomp.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'seccomp') -Arguments $work -WorkDirectory $work
        Invoke-SelfCheck $target $log | Should -Match "^OK pid=$target$"
        Invoke-CheckpointRestore $target 'image-seccomp'
        Invoke-SelfCheck $target $log | Should -Match "^OK pid=$target$"
        (Get-Content "/proc/$target/status" | Select-String '^Seccomp:').Line | Should -Match '\s2$'
    }
}

Describe 'Registers' {
    AfterEach { Stop-TestProcesses }

    It 'keeps general-purpose, AVX and AVX-512 registers of a process stopped in a system call' {
        $work = Join-Path $TestDrive 'registers'
        $log = Join-Path $work 'regcheck.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'regcheck') -Arguments $work -WorkDirectory $work
        Invoke-SelfCheck $target $log | Should -Match "^OK( avx512)? pid=$target$"
        Invoke-CheckpointRestore $target 'image-registers'
        $line = Invoke-SelfCheck $target $log
        $line | Should -Match "^OK( avx512)? pid=$target$"
        if ((Get-Content /proc/cpuinfo -Raw) -match '\bavx512f\b') { $line | Should -Match 'avx512' }
    }
}
