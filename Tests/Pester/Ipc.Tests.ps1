# End to end: System V IPC. A tree in an IPC namespace of its own comes back in a new one holding every object at its
# id and key, with its mode, owner, creator and contents (Tests/Targets/sysvipc.c checks itself); in the host's IPC
# namespace the segments the tree attached come back (made again when deleted, refused when another object took the
# id).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Target = Get-TestTarget 'sysvipc'
    # launch runs a program by its path.
    $script:Unshare = (Get-Command unshare -CommandType Application | Select-Object -First 1).Source
    # Keys of this run's objects: no other run's.
    $script:KeyBase = '0x{0:x8}' -f (0x43500000 + ($PID % 0x8000) * 0x10)

    # ipcs of the IPC namespace of process $Id: every object with its key, id, owner, creator and mode.
    function Get-IpcObjects([int]$Id) {
        (& nsenter "--target=$Id" --ipc ipcs -a -c | Out-String) + (& nsenter "--target=$Id" --ipc ipcs -m -q | Out-String)
    }

    # The ids the target wrote: A B C D S Q.
    function Get-TargetIds([string]$Work) { [int[]](Get-Content (Join-Path $Work 'ids') -Raw).Trim().Split(' ') }

    function Remove-Segment([int]$Id) { & ipcrm -m $Id 2>$null }

    # What ipcs says of a segment of the host's namespace that a restore keeps: id, owner, creator, mode, size, attachments
    # (not the pids or times of the last operations); 'not found' when there is none.
    function Get-SegmentFacts([int]$Id) {
        $text = & ipcs -m -i $Id 2>&1 | Out-String
        if ($text -match 'not found') { return 'not found' }
        ($text -split "`n" | Where-Object { $_ -match '^(Shared memory Segment|uid=|mode=)' }) + ([regex]::Matches($text, '(bytes|nattch)=\d+').Value) -join ' '
    }
}

AfterAll { Stop-TestProcesses }

Describe 'A tree in an IPC namespace of its own' {
    It 'comes back in a new IPC namespace with every segment, semaphore set and queue at its id and key, owners, creators, modes and contents' {
        $work = Join-Path $TestDrive 'own'
        $log = Join-Path $work 'sysvipc.log'
        $target = Start-TestTarget -Program $Unshare -Arguments @('--ipc', $Target, $work, $KeyBase, 'all') -WorkDirectory $work
        $child = [int](Get-Content "/proc/$target/task/$target/children" -Raw).Trim()
        Register-TestProcess $child
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target"
        $ids = Get-TargetIds $work
        $ids[0] | Should -BeGreaterThan 0 -Because 'objects made and removed first put the ids past the first a new namespace gives'
        $before = Get-IpcObjects $target

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image')
        foreach ($name in 'ipcns-var', 'ipcns-shm', 'ipcns-sem', 'ipcns-msg') {
            Get-ChildItem $image.Path -Filter "$name-*.img" | Should -HaveCount 1 -Because "the namespace is saved as CRIU saves it ($name)"
        }
        Get-ChildItem $image.Path -Filter 'pagemap-shmem-*.img' | Should -BeNullOrEmpty -Because 'the segments are saved once, in ipcns-shm'
        foreach ($id in $target, $child) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id to end" }

        $restored = $image | Restore-Process
        $restored.Id | Should -Be $target
        $after = (Get-Item "/proc/$target/ns/ipc").LinkTarget
        $after | Should -Not -Be (Get-Item /proc/self/ns/ipc).LinkTarget -Because 'it has an IPC namespace of its own again'
        (Get-Item "/proc/$child/ns/ipc").LinkTarget | Should -Be $after -Because 'the child joined its parent''s'
        Get-IpcObjects $target | Should -Be $before -Because 'ipcs inside shows the same ids, keys, modes, owners, creators, sizes, attachments and message counts'
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target"
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'the check gives the queue''s messages back'
        # The attachment is at the same address in both processes, and the very same segment.
        $segmentA = '/SYSV{0:x8}' -f ([Convert]::ToInt32($KeyBase, 16) + 1)
        $parentMap = Get-Content "/proc/$target/maps" | Where-Object { $_ -like "*$segmentA*" }
        $childMap = Get-Content "/proc/$child/maps" | Where-Object { $_ -like "*$segmentA*" }
        $parentMap | Should -Not -BeNullOrEmpty
        $childMap | Should -Be $parentMap
        ($parentMap -split '\s+')[4] | Should -Be $ids[0] -Because 'maps shows the segment id as the inode'
        & ipcs -m | Out-String | Should -Not -Match ([regex]::Escape($KeyBase.Substring(0, 8))) -Because 'nothing was made in the host''s namespace'
    }
}

Describe 'A tree in the host IPC namespace' {
    AfterEach {
        Stop-TestProcesses
        if ($script:HostIds) {
            foreach ($id in $HostIds[0], $HostIds[1]) { Remove-Segment $id }
            if ($HostIds[4] -ge 0) { & ipcrm -s $HostIds[4] 2>$null }
            if ($HostIds[5] -ge 0) { & ipcrm -q $HostIds[5] 2>$null }
            $script:HostIds = $null
        }
        if ($script:Stranger) { Remove-Segment $Stranger; $script:Stranger = $null }
    }

    It 'comes back with the segments it attached, made again at their ids after they were deleted' {
        $work = Join-Path $TestDrive 'host'
        $log = Join-Path $work 'sysvipc.log'
        $target = Start-TestTarget -Program $Target -Arguments @($work, $KeyBase, 'shm') -WorkDirectory $work
        $child = [int](Get-Content "/proc/$target/task/$target/children" -Raw).Trim()
        Register-TestProcess $child
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target"
        $script:HostIds = Get-TargetIds $work
        $before = Get-SegmentFacts $HostIds[0]

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image')
        Get-ChildItem $image.Path -Filter 'ipcns-var-*.img' | Should -BeNullOrEmpty -Because 'the host namespace itself is not saved'
        Get-ChildItem $image.Path -Filter 'ipcns-shm-*.img' | Should -HaveCount 1
        foreach ($id in $target, $child) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id to end" }
        # What the tree attached is deleted after the checkpoint (D, marked removed, went with its last detach).
        foreach ($id in $HostIds[0], $HostIds[1]) { & ipcrm -m $id; $LASTEXITCODE | Should -Be 0 }

        $image | Restore-Process | Out-Null
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'A, B and D are back at their ids, keys and addresses, with their contents; D marked removed again'
        Get-SegmentFacts $HostIds[0] | Should -Be $before
        Stop-TestProcesses
        Get-SegmentFacts $HostIds[3] | Should -Be 'not found' -Because 'D, marked removed again, went with its last detach'
    }

    It 'saves the semaphore sets and message queues named by -IpcKey, made again after they were deleted' {
        $work = Join-Path $TestDrive 'host-named'
        $log = Join-Path $work 'sysvipc.log'
        $base = [Convert]::ToInt32($KeyBase, 16) + 16
        $target = Start-TestTarget -Program $Target -Arguments @($work, ('0x{0:x8}' -f $base), 'named') -WorkDirectory $work
        $child = [int](Get-Content "/proc/$target/task/$target/children" -Raw).Trim()
        Register-TestProcess $child
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target"
        $script:HostIds = Get-TargetIds $work

        $failure = $null
        try { Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'refused') -IpcKey ($base + 15) -ErrorAction Stop | Out-Null } catch { $failure = $_ }
        $failure.FullyQualifiedErrorId | Should -Be 'DumpFailed,CriuPS.Cmdlets.CheckpointProcessCommand'
        $failure.Exception.Message | Should -BeLike "*-IpcKey names key $('0x{0:x8}' -f ($base + 15)), and no System V object of the host's IPC namespace has it*"
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'a failed checkpoint leaves the tree as it was'

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image') -IpcKey ($base + 5), ($base + 6)
        Get-ChildItem $image.Path -Filter 'ipcns-sem-*.img' | Should -HaveCount 1
        Get-ChildItem $image.Path -Filter 'ipcns-msg-*.img' | Should -HaveCount 1
        foreach ($id in $target, $child) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id to end" }
        & ipcrm -m $HostIds[0] -m $HostIds[1] -s $HostIds[4] -q $HostIds[5]
        $LASTEXITCODE | Should -Be 0

        $image | Restore-Process | Out-Null
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'the set has its values and owner, the queue its 4 messages in order, at their ids and keys'
    }

    It 'is refused, naming the segment, when another object took the id of one it attached, and leaves nothing behind' {
        $work = Join-Path $TestDrive 'host-taken'
        $log = Join-Path $work 'sysvipc.log'
        $keyBase = '0x{0:x8}' -f ([Convert]::ToInt32($KeyBase, 16) + 8)
        $target = Start-TestTarget -Program $Target -Arguments @($work, $keyBase, 'shm') -WorkDirectory $work
        $child = [int](Get-Content "/proc/$target/task/$target/children" -Raw).Trim()
        Register-TestProcess $child
        $script:HostIds = Get-TargetIds $work
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image')
        foreach ($id in $target, $child) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id to end" }
        foreach ($id in $HostIds[0], $HostIds[1]) { & ipcrm -m $id }
        # Another segment (another key) at B's id: A, whose id is lower, is made again first, then B is refused.
        $make = "open('/proc/sys/kernel/shm_next_id', 'w').write('$($HostIds[1])'); import ctypes; print(ctypes.CDLL(None).shmget(0x4350fff0, 4096, 0o1600))"
        $script:Stranger = [int](& python3 -c $make)
        $Stranger | Should -Be $HostIds[1]

        $failure = $null
        try { $image | Restore-Process -ErrorAction Stop | Out-Null } catch { $failure = $_ }
        $failure | Should -Not -BeNullOrEmpty
        $failure.FullyQualifiedErrorId | Should -Be 'ImageIncompatible,CriuPS.Cmdlets.RestoreProcessCommand'
        $failure.Exception.Message | Should -BeLike "*System V shared memory segment $($HostIds[1]) (key $('0x{0:x8}' -f ([Convert]::ToInt32($keyBase, 16) + 2)))*id $($HostIds[1]) is now the System V shared memory segment $Stranger (key 0x4350fff0) of 4096 bytes*another object took its place*"
        Test-ProcessAlive $target | Should -BeFalse -Because 'a restore that fails leaves nothing running'
        Get-SegmentFacts $HostIds[0] | Should -Be 'not found' -Because 'the segment the failed restore made again is removed'
    }
}

Describe 'A POSIX message queue' {
    BeforeAll {
        # The C library has mq_unlink; nothing in the shell does (no mqueue file system is mounted here).
        function Remove-Queue([string]$Name) { & python3 -c "import ctypes; ctypes.CDLL(None).mq_unlink(b'$Name')" }
        $script:Queue = "/criups-ipc-$PID"
    }
    AfterEach {
        Stop-TestProcesses
        Remove-Queue $Queue
        $env:CRIUPS_FAIL_AT = $null
    }

    It 'keeps its messages in order when the dump fails after reading them (the target is sacred), and comes back opened as it is when it still exists' {
        $work = Join-Path $TestDrive 'mqueue-fail'
        $log = Join-Path $work 'mqueue.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'mqueue') -Arguments @($work, $Queue) -WorkDirectory $work
        $env:CRIUPS_FAIL_AT = 'mqueue-read'
        $failure = $null
        try { Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'failed') -ErrorAction Stop | Out-Null } catch { $failure = $_ }
        $env:CRIUPS_FAIL_AT = $null
        $failure | Should -Not -BeNullOrEmpty
        $failure.Exception.Message | Should -BeLike '*mqueue-read*'
        Test-Path (Join-Path $work 'failed') | Should -BeFalse
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'the 5 messages were sent back, each priority''s in its order'

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image')
        Test-Path (Join-Path $image.Path 'criups-mqueue.img') | Should -BeTrue
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        $image | Restore-Process | Out-Null
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'the queue, still there with its messages, is open again at fd 7, non-blocking'
    }

    It 'is made again with its messages, priorities and limits when it was removed after the checkpoint' {
        $work = Join-Path $TestDrive 'mqueue-host'
        $log = Join-Path $work 'mqueue.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'mqueue') -Arguments @($work, $Queue) -WorkDirectory $work
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image')
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        Remove-Queue $Queue
        $image | Restore-Process | Out-Null
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target"
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target"
    }

    It 'comes back in the new IPC namespace of its tree' {
        $work = Join-Path $TestDrive 'mqueue-own'
        $log = Join-Path $work 'mqueue.log'
        $target = Start-TestTarget -Program $Unshare -Arguments @('--ipc', (Get-TestTarget 'mqueue'), $work, $Queue) -WorkDirectory $work
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image')
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        $image | Restore-Process | Out-Null
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target"
        & python3 -c "import ctypes,os; print(ctypes.CDLL(None, use_errno=True).mq_open(b'$Queue', os.O_RDONLY))" | Should -Be '-1' -Because 'the queue is in the tree''s namespace, not the host''s'
    }
}
