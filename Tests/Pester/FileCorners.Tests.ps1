# End to end: what processes reach other than through a plain open descriptor, and what each open file description
# keeps of its own. Locks on files only a mapping keeps open (and the JVM, which holds one on its hsperfdata file),
# status flags per description, deleted directories, inotify watches on deleted files, epoll registrations of numbers
# closed since, and files under /proc of the tree's own processes. Each C target checks itself after the restore.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS

    # Starts C target NAME in a work directory, has it check itself, checkpoints it (the tree ends) and returns what
    # the test needs to restore and check it again.
    function Invoke-Checkpoint([string]$Name) {
        $work = Join-Path $TestDrive $Name
        $log = Join-Path $work "$Name.log"
        $target = Start-TestTarget -Program (Get-TestTarget $Name) -Arguments $work -WorkDirectory $work
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'the target is sound before the checkpoint'
        $pids = @(Get-ProcessTreeLayout $target | ForEach-Object { [int]$_.Split(' ')[0] })
        $locks = Get-Locks $pids
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive "image-$Name") -WarningVariable warnings -WarningAction SilentlyContinue -ErrorAction Stop
        $warnings | Should -BeNullOrEmpty
        foreach ($id in $pids) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id to end" }
        [pscustomobject]@{ Target = $target; Pids = $pids; Image = $image; Work = $work; Log = $log; Locks = $locks }
    }

    function Restore-Checkpoint($Run) {
        Restore-Process $Run.Image.Path -WarningVariable warnings -WarningAction SilentlyContinue | Out-Null
        $Run.Pids | ForEach-Object { Register-TestProcess $_ }
        $warnings | Should -BeNullOrEmpty
        Invoke-SelfCheck $Run.Target $Run.Log | Should -Be "OK pid=$($Run.Target)"
    }

    # The locks of /proc/locks held by these processes (the pid field): kind, access, pid and range (a deleted file
    # created again is another inode; the targets check which file each lock is on).
    function Get-Locks([int[]]$Pids) {
        @(Get-Content /proc/locks | ForEach-Object { , ($_ -split '\s+') } | Where-Object { $_[4] -in $Pids } |
            ForEach-Object { "$($_[1]) $($_[3]) $($_[4]) $($_[6]) $($_[7])" } | Sort-Object)
    }

    # The OFD locks on a file (/proc/locks names no process for them), without their ordinal.
    function Get-OfdLocks([string]$Path) {
        $inode = (& stat -c %i $Path)
        @(Get-Content /proc/locks | Where-Object { $_ -match "OFDLCK .* -1 \S+:$inode " } | ForEach-Object { $_ -replace '^\d+:\s*' })
    }

    # The open flags of each descriptor of a process, from fdinfo: "fd flags" lines.
    function Get-DescriptorFlags([int]$Id) {
        @(Get-ChildItem "/proc/$Id/fdinfo" | Sort-Object { [int]$_.Name } | ForEach-Object {
            "$($_.Name) $((Get-Content $_.FullName | Where-Object { $_ -match '^flags:' }) -replace '^flags:\s*')"
        })
    }
}

Describe 'Files only a mapping keeps open, with their locks' {
    AfterEach { Stop-TestProcesses }

    It 'keeps flock and OFD locks taken through descriptors closed since, with the mappings that hold them' {
        $ofd = Join-Path $TestDrive 'mappedlock/ofd.dat'
        $run = Invoke-Checkpoint 'mappedlock'
        $run.Locks | Should -HaveCount 2 -Because 'the process holds two flock locks'
        Get-OfdLocks $ofd | Should -HaveCount 0 -Because 'the tree is gone'
        $areas = (Import-CheckpointImageFile (Join-Path $run.Image.Path "mm-$($run.Target).img")).Entries[0].vmas
        @($areas | Where-Object { $_.criups_locks }).Count | Should -Be 3 -Because 'each locked file has its locks on one area'
        @($areas.criups_locks | Where-Object { $_.pid -eq $run.Target -and $_.fd -eq -1 }).Count | Should -Be 3

        Restore-Checkpoint $run
        Get-ChildItem $run.Work -Filter 'ghost.dat*' | Should -BeNullOrEmpty -Because 'the deleted file is deleted again'
        Get-Locks $run.Pids | Should -Be $run.Locks -Because 'the flock locks are back, held by the same process'
        Get-OfdLocks $ofd | Should -Match '^OFDLCK\s+ADVISORY\s+WRITE\s+-1\s+\S+\s+0\s+99$'
        Invoke-SelfCheck $run.Target $run.Log 'USR2' | Should -Be "OK pid=$($run.Target)" -Because 'the flock lock goes with its mapping, and with nothing else'
    }
}

Describe 'Status flags of each open file description' {
    AfterEach { Stop-TestProcesses }

    It 'gives each pipe end, FIFO, socket, eventfd and file exactly its own flags, O_ASYNC with its owner' {
        $work = Join-Path $TestDrive 'statusflags'
        $target = Start-TestTarget -Program (Get-TestTarget 'statusflags') -Arguments $work -WorkDirectory $work
        $log = Join-Path $work 'statusflags.log'
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target"
        $flags = Get-DescriptorFlags $target
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-statusflags')
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'

        Restore-Process $image.Path | Out-Null
        Register-TestProcess $target
        Get-DescriptorFlags $target | Should -Be $flags -Because 'every description has the flags it had'
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target"
    }
}

Describe 'Deleted directories' {
    AfterEach { Stop-TestProcesses }

    It 'restores a deleted working directory, root and directory descriptor as deleted directories' {
        $run = Invoke-Checkpoint 'deleteddirs'
        Get-ChildItem $run.Image.Path -Filter 'ghost-file-*.img' | Should -HaveCount 3
        Restore-Checkpoint $run
        Get-ChildItem $run.Work -Filter 'gone-*' | Should -BeNullOrEmpty -Because 'the directories are deleted again'
        $child = $run.Pids | Where-Object { $_ -ne $run.Target }
        (Get-Item "/proc/$child/root").LinkTarget | Should -Be "$(Join-Path $run.Work 'gone-root') (deleted)"
        (Get-Item "/proc/$($run.Target)/cwd").LinkTarget | Should -Be "$(Join-Path $run.Work 'gone-cwd') (deleted)"
    }
}

Describe 'inotify watches on deleted files' {
    AfterEach { Stop-TestProcesses }

    It 'restores watches on a deleted file and a deleted directory onto the very files the process holds' {
        $run = Invoke-Checkpoint 'deletedwatch'
        Get-ChildItem $run.Image.Path -Filter 'ghost-file-*.img' | Should -HaveCount 2
        Restore-Checkpoint $run
        Get-ChildItem $run.Work -Filter 'watched*' | Should -BeNullOrEmpty
        Invoke-SelfCheck $run.Target $run.Log | Should -Be "OK pid=$($run.Target)"
    }
}

Describe 'epoll registrations of closed descriptor numbers' {
    AfterEach { Stop-TestProcesses }

    It 'restores registrations whose number was closed, the file kept by a dup or by a child, under their own numbers' {
        $run = Invoke-Checkpoint 'epollclosed'
        $files = (Import-CheckpointImageFile (Join-Path $run.Image.Path 'files.img')).Entries
        $registrations = @(($files | Where-Object type -EQ 'EVENTPOLL').epfd.tfd)
        $registrations | Should -HaveCount 4
        @($registrations | Where-Object { $null -ne $_.criups_file_id }).tfd | Sort-Object | Should -Be @(20, 21, 22) -Because 'A, B and C are on files their numbers no longer name'
        Restore-Checkpoint $run
        Invoke-SelfCheck $run.Target $run.Log | Should -Be "OK pid=$($run.Target)"
    }

    It 'refuses a registration whose file only a process outside the tree holds, before freezing anything' {
        $work = Join-Path $TestDrive 'epoll-outside'
        $target = Start-TestTarget -Program (Get-TestTarget 'anonrefused') -Arguments 'epoll-outside', $work -WorkDirectory $work
        $holder = [int](Get-Content "/proc/$target/stat" -Raw).Split(') ')[1].Split(' ')[1]
        try {
            Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'epoll-outside-image') -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $errors[0].FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
            $errors[0].Exception.Message | Should -Match 'nothing was frozen'
            $errors[0].Exception.Message | Should -Match 'fd 5: an epoll instance watching a file it was given as fd 3, which the process has closed since, and which no descriptor of the tree holds any more'
            (Get-Content "/proc/$target/status" -Raw) | Should -Match 'TracerPid:\s+0\b'
        }
        finally {
            Stop-TestProcesses -Also $holder
        }
    }
}

Describe 'Files under /proc of the tree''s processes' {
    AfterEach { Stop-TestProcesses }

    It 'opens /proc/PID files of a child, a zombie and the process itself once those processes exist again' {
        $run = Invoke-Checkpoint 'procfiles'
        $names = @((Import-CheckpointImageFile (Join-Path $run.Image.Path 'files.img')).Entries.reg.name)
        @($names -match '^/proc/\d+') | Should -HaveCount 4
        Restore-Checkpoint $run
        Invoke-SelfCheck $run.Target $run.Log | Should -Be "OK pid=$($run.Target)"
    }
}

Describe 'OpenJDK 17' {
    AfterEach { Stop-TestProcesses }

    It 'checkpoints a JVM (8 workers, a 200,000-entry map, a lock on its hsperfdata file), which carries on after the restore' {
        $java = (Get-Command java -CommandType Application -ErrorAction Stop)[0].Source
        $work = Join-Path $TestDrive 'jvm'
        $source = Join-Path (Get-RepositoryRoot) 'Tests/Targets/JvmWorkers.java'
        # The source launcher compiles the program first: that takes a while on a busy machine.
        $target = Start-TestTarget -Program $java -Arguments $source, $work -WorkDirectory $work -TimeoutSeconds 180
        function Get-Answer {
            $answer = Join-Path $work 'answer'
            Remove-Item $answer -ErrorAction Ignore
            New-Item (Join-Path $work 'ask') -ItemType File | Out-Null
            Wait-Until { Test-Path $answer } 'the JVM to answer' 60
            Get-Content $answer
        }
        $before = Get-Answer
        $before | Should -Match "^OK total=\d+ threads=\d+ pid=$target$"
        $hsperfdata = "/tmp/hsperfdata_$(& id -un)/$target"
        Get-Locks @($target) | Should -Be "FLOCK WRITE $target 0 EOF" -Because 'the JVM holds a lock on its hsperfdata file'
        Get-ChildItem "/proc/$target/fd" | Where-Object LinkTarget -EQ $hsperfdata | Should -BeNullOrEmpty -Because 'only its mapping keeps that file open'

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-jvm')
        $image.Processes[0].Threads.Count | Should -BeGreaterThan 8
        Wait-Until { -not (Test-ProcessAlive $target) } 'the JVM to end'

        Restore-Process $image.Path | Out-Null
        Register-TestProcess $target
        $after = Get-Answer
        $after | Should -Match "^OK total=\d+ threads=\d+ pid=$target$" -Because 'the map holds its 200,000 entries, each consistent with the total'
        [long]($after -replace '.*total=(\d+).*', '$1') | Should -BeGreaterThan ([long]($before -replace '.*total=(\d+).*', '$1'))
        $later = Get-Answer
        [long]($later -replace '.*total=(\d+).*', '$1') | Should -BeGreaterThan ([long]($after -replace '.*total=(\d+).*', '$1')) -Because 'the workers keep computing'
        Get-Locks @($target) | Should -Be "FLOCK WRITE $target 0 EOF" -Because 'the lock is back, held by the JVM through its mapping'
        Get-ChildItem "/proc/$target/fd" | Where-Object LinkTarget -EQ $hsperfdata | Should -BeNullOrEmpty
    }
}
