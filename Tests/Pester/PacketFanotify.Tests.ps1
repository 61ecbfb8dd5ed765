# End to end: packet sockets (AF_PACKET) with their options, membership, fanout group and receive and transmit rings
# mapped into memory (Tests/Targets/packetsockets.c, in a network namespace of the test's own so that its loopback
# interface is private), and fanotify groups with inode, directory, ignored and mount marks
# (Tests/Targets/fanotifymarks.c): each checkpointed, killed, restored, and working (a packet sent is received
# through the ring and the socket, a file access gives its fanotify event).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS

    # The marks of the fanotify group at fd 4 of a process, as its fdinfo shows them, sorted.
    function Get-FanotifyMarks([int]$Id) {
        @(Get-Content "/proc/$Id/fdinfo/4" | Where-Object { $_ -like 'fanotify *' } | Sort-Object)
    }
}

Describe 'Packet sockets and fanotify groups' {
    AfterEach { Stop-TestProcesses }

    It 'restores packet sockets with their options, membership, fanout and mapped rings, which carry packets again' {
        $namespace = "criups-packet-$PID"
        try {
            & ip netns add $namespace
            & ip -n $namespace link set lo up
            $LASTEXITCODE | Should -Be 0 -Because 'the test sets up its network namespace'
            $promiscuity = { [int]((& ip -n $namespace -d link show lo) -join ' ' -replace '.*promiscuity (\d+).*', '$1') }
            $work = Join-Path $TestDrive 'packet'
            $log = Join-Path $work 'packetsockets.log'
            $nsenter = (Get-Command nsenter -CommandType Application | Select-Object -First 1).Source
            $target = Start-TestTarget -Program $nsenter -Arguments "--net=/run/netns/$namespace", (Get-TestTarget 'packetsockets'), $work -WorkDirectory $work
            (& $promiscuity) | Should -Be 1 -Because 'the raw socket made lo promiscuous (PACKET_ADD_MEMBERSHIP)'

            $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'packet-image')
            $sockets = @($image.Processes.Files | Where-Object Type -EQ 'PACKETSK')
            $sockets.Target | Should -Contain 'packet socket (raw, protocol 0x0003, interface 1)'
            $sockets.Target | Should -Contain 'packet socket (datagram, protocol 0x0800, interface 1)'
            Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
            (& $promiscuity) | Should -Be 0 -Because 'the membership went with the socket'

            Restore-Process $image.Path -NetworkNamespace "/run/netns/$namespace" | Out-Null
            (& $promiscuity) | Should -Be 1 -Because 'the membership is back'
            @(Get-Content "/proc/$target/maps" | Where-Object { $_ -match ' rw-s .*socket:\[' }).Count | Should -Be 1 -Because 'the rings are mapped again'
            Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'the options are back, a frame sent through the transmit ring and a UDP datagram reach the receive ring and the datagram socket'
        }
        finally {
            Stop-TestProcesses
            & ip netns del $namespace 2>$null
        }
    }

    It 'restores a fanotify group with its inode, directory, ignored and mount marks, which report file accesses again' {
        $work = Join-Path $TestDrive 'fanotify'
        $log = Join-Path $work 'fanotifymarks.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'fanotifymarks') -Arguments $work -WorkDirectory $work
        $marks = Get-FanotifyMarks $target
        $marks.Count | Should -Be 5 -Because 'the group line and four marks'

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'fanotify-image')
        @($image.Processes.Files | Where-Object Type -EQ 'FANOTIFY').Count | Should -Be 1
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'

        Restore-Process $image.Path | Out-Null
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'each mark reports its events again, and the ignored mask keeps quiet'
        Get-FanotifyMarks $target | Should -Be $marks -Because 'the group has the same flags and the same marks, masks and ignored masks on the same files and mount'
    }

    It 'refuses, before freezing, a fanotify mark on a whole filesystem, naming it' {
        $work = Join-Path $TestDrive 'fanotify-filesystem'
        $script = "import ctypes, os, time; libc = ctypes.CDLL(None, use_errno=True); g = libc.fanotify_init(0, 0); " +
            "assert libc.fanotify_mark(g, 0x1 | 0x100, ctypes.c_ulonglong(0x8), -100, b'.') == 0; " +
            "open('ready', 'w').write(str(os.getpid()))`nwhile True: time.sleep(1)"
        $python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source
        $target = Start-TestTarget -Program $python -Arguments '-c', $script -WorkDirectory $work

        Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'fanotify-filesystem-image') -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $errors[0].Exception.Message | Should -Match 'fanotify mark on the whole filesystem of device \d+:\d+ \(FAN_MARK_FILESYSTEM\)'
        Test-ProcessAlive $target | Should -BeTrue
    }
}
