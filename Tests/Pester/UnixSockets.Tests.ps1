# End to end: unix domain sockets of every kind across a process tree, with the data waiting in them, and the
# connections CriuPS must refuse (Tests/Targets/unixsockets.c).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:UnixSockets = Get-TestTarget 'unixsockets'

    # Starts the 4-process tree; returns its root and every pid of it.
    function Start-SocketTree([string]$Work) {
        $root = Start-TestTarget -Program $UnixSockets -Arguments $Work -WorkDirectory $Work
        $pids = @(Get-ProcessTreeLayout $root | ForEach-Object { [int]$_.Split(' ')[0] })
        $pids | Where-Object { $_ -ne $root } | ForEach-Object { Register-TestProcess $_ }
        $pids.Count | Should -Be 4
        @{ Root = $root; Pids = $pids }
    }
}

Describe 'Unix domain sockets' {
    AfterEach { Stop-TestProcesses }

    It 'restores socketpairs, a listener with an accepted and a pending connection, bound, abstract and half-shut sockets with every queued byte' {
        $work = Join-Path $TestDrive 'tree'
        $log = Join-Path $work 'unixsockets.log'
        $tree = Start-SocketTree $work

        $image = Checkpoint-Process -Id $tree.Root -ImagePath (Join-Path $TestDrive 'image-tree')
        $image.ProcessCount | Should -Be 4
        $sockets = @($image.Processes.Files | Where-Object Type -EQ 'UNIXSK')
        $sockets.Count | Should -Be 19 -Because 'the root holds 10 sockets, A and B 3 each, C 2 and the listener it shares with the root'
        $sockets.Target | Should -Contain "unix stream socket $work/listen.sock (listening)"
        $sockets.Target | Should -Contain "unix datagram socket @criups-usk-$($tree.Root)"
        Join-Path $image.Path 'sk-queues.img' | Should -Exist
        foreach ($id in $tree.Pids) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id of the tree to end" }
        Test-Path (Join-Path $work 'listen.sock') | Should -BeTrue -Because 'the socket files stay behind, stale, for the restore to replace'

        Restore-Process $image.Path | Out-Null
        Invoke-SelfCheck $tree.Root $log | Should -Be "OK processes=4 pid=$($tree.Root)"
        Invoke-SelfCheck $tree.Root $log | Should -Be "OK processes=4 pid=$($tree.Root)" -Because 'the connections carry on'
    }

    It 'reads the queues without taking anything: the process left running keeps them, and the image brings them back again' {
        $work = Join-Path $TestDrive 'leave'
        $log = Join-Path $work 'unixsockets.log'
        $tree = Start-SocketTree $work

        $image = Checkpoint-Process -Id $tree.Root -ImagePath (Join-Path $TestDrive 'image-leave') -LeaveRunning
        Invoke-SelfCheck $tree.Root $log | Should -Be "OK processes=4 pid=$($tree.Root)" -Because 'the original still has every queued byte'
        foreach ($id in $tree.Pids) { Send-Signal $id 'KILL' }
        foreach ($id in $tree.Pids) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id of the tree to end" }

        Restore-Process $image.Path | Out-Null
        Invoke-SelfCheck $tree.Root $log | Should -Be "OK processes=4 pid=$($tree.Root)"
    }

    It 'refuses, before freezing, a socket connected to a process outside the tree, and leaves the process untouched' {
        $path = Join-Path $TestDrive 'server.sock'
        Start-TestTarget -Program $UnixSockets -Arguments (Join-Path $TestDrive 'server'), 'server', $path -WorkDirectory (Join-Path $TestDrive 'server') | Out-Null
        $clientWork = Join-Path $TestDrive 'client'
        $client = Start-TestTarget -Program $UnixSockets -Arguments $clientWork, 'client', $path -WorkDirectory $clientWork
        $log = Join-Path $clientWork 'unixsockets.log'

        Checkpoint-Process -Id $client -ImagePath (Join-Path $TestDrive 'image-client') -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $errors[0].Exception.Message | Should -Match "nothing was frozen"
        $errors[0].Exception.Message | Should -Match "fd 3: unix stream socket connected to $([regex]::Escape($path)), whose other end is outside the checkpointed tree"
        Test-Path (Join-Path $TestDrive 'image-client') | Should -BeFalse
        (Get-Content "/proc/$client/status" | Select-String '^TracerPid:\s+0$') | Should -Not -BeNullOrEmpty
        Invoke-SelfCheck $client $log | Should -Be "OK echo pid=$client" -Because 'the connection still works'
    }

    It 'refuses descriptors passed with SCM_RIGHTS that wait in a queue' {
        $work = Join-Path $TestDrive 'rights'
        $target = Start-TestTarget -Program $UnixSockets -Arguments $work, 'rights' -WorkDirectory $work

        Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-rights') -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $errors[0].Exception.Message | Should -Match 'fd \d+: unix stream socket has 1 descriptor\(s\) passed with SCM_RIGHTS waiting in its queue'
        Test-ProcessAlive $target | Should -BeTrue
    }
}
