# End to end: IPv4 and IPv6 sockets. Listening and UDP sockets need no switch; established TCP connections come
# back with -TcpEstablished, with every byte that was queued either way, while a client that is not checkpointed
# carries on without reconnecting (Tests/Targets/tcpstream.py), on loopback, over IPv6, across two network
# namespaces joined by a veth link, and with both ends in the tree. The network lock (an nftables table) must be
# gone after each test.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source
    $script:Stream = Join-Path (Get-RepositoryRoot) 'Tests/Targets/tcpstream.py'
    $script:Total = 3MB

    # Starts a Python target, in the network namespace $Namespace when one is named (nsenter changes nothing else).
    function Start-PythonTarget([string[]]$Arguments, [string]$Work, [string]$Namespace) {
        if (-not $Namespace) { return Start-TestTarget -Program $Python -Arguments $Arguments -WorkDirectory $Work }
        $nsenter = (Get-Command nsenter -CommandType Application | Select-Object -First 1).Source
        Start-TestTarget -Program $nsenter -Arguments (@("--net=/run/netns/$Namespace", $Python) + $Arguments) -WorkDirectory $Work
    }

    # Starts the echo server and returns its pid and port.
    function Start-StreamServer([string]$Work, [string]$Address, [string]$Namespace) {
        $server = Start-PythonTarget @($Stream, 'server', $Work, $Address) $Work $Namespace
        @{ Pid = $server; Port = [int](Get-Content (Join-Path $Work 'port')) }
    }

    function Start-StreamClient([string]$Work, [string]$Address, [int]$Port, [string]$Namespace) {
        Start-PythonTarget @($Stream, 'client', $Work, $Address, $Port, $Total) $Work $Namespace
    }

    # "sent received unacknowledged" of the client, as numbers.
    function Get-Progress([string]$Work) {
        $path = Join-Path $Work 'progress'
        if (-not (Test-Path $path)) { return @(0, 0, 0) }
        @((Get-Content $path -Raw).Trim().Split(' ') | ForEach-Object { [long]$_ })
    }

    # Lets the stream run, then makes the client stop reading until every queue is full and nothing moves:
    # the server's receive and send queues and the client's send queue all hold data. Returns the client's progress.
    function Stop-ClientReading([string]$Work) {
        Wait-Until { (Get-Progress $Work)[1] -gt 200KB } 'the echo to flow'
        New-Item (Join-Path $Work 'hold') | Out-Null
        $script:last = ''
        Wait-Until {
            $now = Get-Content (Join-Path $Work 'progress') -Raw
            $still = $now -eq $script:last
            $script:last = $now
            Start-Sleep -Milliseconds 250
            $still
        } 'the stream to stall'
        Get-Progress $Work
    }

    function Resume-ClientReading([string]$Work) { Remove-Item (Join-Path $Work 'hold') }

    # The client's verdict once it has checked the whole stream.
    function Wait-ClientResult([string]$Work) {
        $log = Join-Path $Work 'client.log'
        Wait-Until { (Test-Path $log) -and (Get-Content $log -Raw) -match "`n" } 'the client to finish the stream' -TimeoutSeconds 60
        (Get-Content $log -Raw).Trim()
    }

    # The counts of bytes the dump found queued on the server's connection, from dump.log.
    function Get-DumpedQueues([string]$Image) {
        $line = Select-String -Path (Join-Path $Image 'dump.log') -Pattern '(\d+) bytes received and unread, (\d+) bytes not acknowledged of which (\d+) not sent yet' | Select-Object -First 1
        $line | Should -Not -BeNullOrEmpty -Because 'dump.log reports the queues of each connection'
        @{ Unread = [long]$line.Matches[0].Groups[1].Value; Unacknowledged = [long]$line.Matches[0].Groups[2].Value; Unsent = [long]$line.Matches[0].Groups[3].Value }
    }

    # Checkpoints the server with its connection while every queue is full, kills it, restores it and checks that
    # the client got its whole stream back; returns the timings.
    function Test-ConnectionSurvives([string]$Name, [string]$Address, [string]$ServerNamespace, [string]$ClientNamespace, [string]$Connect = $Address) {
        $serverWork = Join-Path $TestDrive "$Name-server"
        $clientWork = Join-Path $TestDrive "$Name-client"
        New-Item -ItemType Directory -Force $clientWork | Out-Null
        $server = Start-StreamServer $serverWork $Address $ServerNamespace
        Start-StreamClient $clientWork $Connect $server.Port $ClientNamespace | Out-Null
        $progress = Stop-ClientReading $clientWork
        $progress[2] | Should -BeGreaterThan 0 -Because 'the client has data it sent that the server has not acknowledged'

        $image = Checkpoint-Process -Id $server.Pid -ImagePath (Join-Path $TestDrive "$Name-image") -TcpEstablished
        $clock = [Diagnostics.Stopwatch]::StartNew()
        Resume-ClientReading $clientWork
        Wait-Until { -not (Test-ProcessAlive $server.Pid) } 'the checkpointed server to end'
        $queues = Get-DumpedQueues $image.Path
        $queues.Unread | Should -BeGreaterThan 0 -Because 'the server had stopped reading'
        $queues.Unacknowledged | Should -BeGreaterThan 0 -Because 'the server had echoed data the client was not reading'
        Join-Path $image.Path "tcp-stream-*.img" | Should -Exist

        # A server in its own namespace goes back into it (the client's veth leads there), not into a new one.
        $into = if ($ServerNamespace) { @{ NetworkNamespace = "/run/netns/$ServerNamespace" } } else { @{} }
        $restored = Restore-Process $image.Path -TcpEstablished @into
        Register-TestProcess $restored.Id
        $result = Wait-ClientResult $clientWork
        $result | Should -Match "^OK sent=$Total received=$Total " -Because 'every byte comes back once, in order'
        $pause = [double]($result -replace '.*maxgap=', '')
        $frozen = [int]$image.FrozenTime.TotalMilliseconds
        $restore = [int]$restored.RestoreTime.TotalMilliseconds
        Write-Host "    ${Name}: frozen $frozen ms, restore $restore ms, the client got no data for $([int]($pause * 1000)) ms at most; at dump time $($queues.Unread) bytes unread, $($queues.Unacknowledged) unacknowledged ($($queues.Unsent) unsent)"
        $server.Pid
    }
}

Describe 'IPv4 and IPv6 sockets' {
    AfterEach { Stop-TestProcesses }

    It 'restores listening and UDP sockets, IPv4 and IPv6, bound or not, with their options, without any switch' {
        $work = Join-Path $TestDrive 'plain'
        $log = Join-Path $work 'inetsockets.log'
        $target = Start-TestTarget -Program $Python -Arguments (Join-Path (Get-RepositoryRoot) 'Tests/Targets/inetsockets.py'), $work -WorkDirectory $work
        $ports = (Get-Content (Join-Path $work 'ports') -Raw).Trim().Split(' ')
        # ss shows a listener's backlog as its Send-Q: "LISTEN 0 <backlog> <address>:<port> ...".
        function Get-Listeners { @(& ss -Hltn | Where-Object { $_ -match ":($($ports[0])|$($ports[1]))\s" } | ForEach-Object { ($_ -split '\s+')[0..3] -join ' ' } | Sort-Object) }
        $listeners = Get-Listeners
        $listeners.Count | Should -Be 2

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'plain-image')
        $sockets = @($image.Processes.Files | Where-Object Type -EQ 'INETSK')
        $sockets.Count | Should -Be 6
        $sockets.Target | Should -Contain "TCP socket listening on 127.0.0.1:$($ports[0])"
        $sockets.Target | Should -Contain "TCP socket listening on [::]:$($ports[1])"
        $sockets.Target | Should -Contain "UDP socket bound to [::1]:$($ports[2])"
        $sockets.Target | Should -Contain "UDP socket 127.0.0.1:$($ports[3]) connected to 127.0.0.1:$($ports[3])"
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'

        Restore-Process $image.Path | Out-Null
        Get-Listeners | Should -Be $listeners -Because 'each listener is back on its address with its backlog'
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'the listeners accept, a datagram sent now arrives, the options are back'
        Get-LockTable | Should -BeNullOrEmpty
    }

    It 'refuses, before freezing, a connection without -TcpEstablished, naming it and the switch, and leaves it working' {
        $serverWork = Join-Path $TestDrive 'refuse-server'
        $clientWork = Join-Path $TestDrive 'refuse-client'
        New-Item -ItemType Directory -Force $clientWork | Out-Null
        $server = Start-StreamServer $serverWork '127.0.0.1'
        Start-StreamClient $clientWork '127.0.0.1' $server.Port | Out-Null
        Wait-Until { (Get-Progress $clientWork)[1] -gt 0 } 'the echo to flow'

        Checkpoint-Process -Id $server.Pid -ImagePath (Join-Path $TestDrive 'refuse-image') -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'TcpEstablishedRequired,CriuPS.Cmdlets.CheckpointProcessCommand'
        $errors[0].Exception.Message | Should -Match "nothing was frozen"
        $errors[0].Exception.Message | Should -Match "TCP connection 127\.0\.0\.1:$($server.Port) to 127\.0\.0\.1:\d+ \(established\).*-TcpEstablished"
        $errors[0].ErrorDetails.RecommendedAction | Should -Match '-TcpEstablished'
        Join-Path $TestDrive 'refuse-image' | Should -Not -Exist
        Wait-ClientResult $clientWork | Should -Match "^OK sent=$Total received=$Total "
        Get-LockTable | Should -BeNullOrEmpty
    }

    It 'carries a live connection to a client outside the tree across a checkpoint, with data queued both ways' {
        Test-ConnectionSurvives 'loopback' '127.0.0.1'
        Get-LockTable | Should -BeNullOrEmpty -Because 'the lock goes once the connection is back'
    }

    It 'carries a live IPv6 connection on ::1' {
        Test-ConnectionSurvives 'ipv6' '::1'
        Get-LockTable | Should -BeNullOrEmpty
    }

    It 'carries a connection of a server in its own network namespace, over a veth link to a client in another' {
        $a = "criups-$PID-a"; $b = "criups-$PID-b"
        try {
            & ip netns add $a; & ip netns add $b
            & ip link add "cps$PID" type veth peer name "cps${PID}b"
            & ip link set "cps$PID" netns $a; & ip link set "cps${PID}b" netns $b
            & ip -n $a addr add 10.250.0.1/30 dev "cps$PID"; & ip -n $a link set "cps$PID" up; & ip -n $a link set lo up
            & ip -n $b addr add 10.250.0.2/30 dev "cps${PID}b"; & ip -n $b link set "cps${PID}b" up; & ip -n $b link set lo up
            $LASTEXITCODE | Should -Be 0 -Because 'the test sets up its namespaces and link'

            Test-ConnectionSurvives 'netns' '10.250.0.1' $a $b | Out-Null
            Get-LockTable | Should -BeNullOrEmpty -Because 'the lock was set in the server''s namespace, not here'
            if (Get-Command nft -ErrorAction Ignore) {
                & ip netns exec $a nft list tables | Should -BeNullOrEmpty -Because 'the lock is gone from the server''s namespace'
            }
        }
        finally {
            Stop-TestProcesses
            & ip netns del $a 2>$null; & ip netns del $b 2>$null
        }
    }

    It 'restores a connection whose both ends are in the tree' {
        $work = Join-Path $TestDrive 'pair'
        $server = Start-TestTarget -Program $Python -Arguments $Stream, 'pair', $work, '127.0.0.1', $Total -WorkDirectory $work
        Wait-Until { Test-Path (Join-Path $work 'client-ready') } 'the client child to start'
        $client = [int](Get-Content (Join-Path $work 'client-ready'))
        Register-TestProcess $client
        Stop-ClientReading $work | Out-Null

        $image = Checkpoint-Process -Id $server -ImagePath (Join-Path $TestDrive 'pair-image') -TcpEstablished
        $image.ProcessCount | Should -Be 2
        @(Get-ChildItem $image.Path -Filter 'tcp-stream-*.img').Count | Should -Be 2
        Resume-ClientReading $work
        foreach ($id in $server, $client) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id to end" }

        Restore-Process $image.Path -TcpEstablished | Out-Null
        Wait-ClientResult $work | Should -Match "^OK sent=$Total received=$Total "
        Get-LockTable | Should -BeNullOrEmpty
    }

    It 'keeps the connection working with -LeaveRunning, nothing lost, and removes the lock' {
        $serverWork = Join-Path $TestDrive 'leave-server'
        $clientWork = Join-Path $TestDrive 'leave-client'
        New-Item -ItemType Directory -Force $clientWork | Out-Null
        $server = Start-StreamServer $serverWork '127.0.0.1'
        Start-StreamClient $clientWork '127.0.0.1' $server.Port | Out-Null
        Stop-ClientReading $clientWork | Out-Null

        $image = Checkpoint-Process -Id $server.Pid -ImagePath (Join-Path $TestDrive 'leave-image') -TcpEstablished -LeaveRunning
        Get-LockTable | Should -BeNullOrEmpty -Because 'the processes go on, so the lock went at once'
        Resume-ClientReading $clientWork
        Wait-ClientResult $clientWork | Should -Match "^OK sent=$Total received=$Total "
        Test-ProcessAlive $server.Pid | Should -BeTrue
        Join-Path $image.Path 'tcp-stream-*.img' | Should -Exist
    }

    It 'releases the connection unharmed, out of repair mode and unlocked, when a checkpoint fails after saving it' {
        $serverWork = Join-Path $TestDrive 'failed-server'
        $clientWork = Join-Path $TestDrive 'failed-client'
        New-Item -ItemType Directory -Force $clientWork | Out-Null
        $server = Start-StreamServer $serverWork '127.0.0.1'
        Start-StreamClient $clientWork '127.0.0.1' $server.Port | Out-Null
        Stop-ClientReading $clientWork | Out-Null

        try {
            $env:CRIUPS_FAIL_AT = 'before-kill'
            Checkpoint-Process -Id $server.Pid -ImagePath (Join-Path $TestDrive 'failed-image') -TcpEstablished -ErrorVariable errors -ErrorAction SilentlyContinue
        }
        finally { $env:CRIUPS_FAIL_AT = $null }
        $errors[0].FullyQualifiedErrorId | Should -Be 'DumpFailed,CriuPS.Cmdlets.CheckpointProcessCommand'
        Get-LockTable | Should -BeNullOrEmpty -Because 'a failed checkpoint removes the lock'
        Resume-ClientReading $clientWork
        Wait-ClientResult $clientWork | Should -Match "^OK sent=$Total received=$Total " -Because 'the connection left repair mode with nothing lost'
        Test-ProcessAlive $server.Pid | Should -BeTrue
    }

    It 'refuses a restore without a switch (the lock stays), then brings the connection back closed with -TcpClose' {
        $serverWork = Join-Path $TestDrive 'close-server'
        $clientWork = Join-Path $TestDrive 'close-client'
        New-Item -ItemType Directory -Force $clientWork | Out-Null
        $server = Start-StreamServer $serverWork '127.0.0.1'
        Start-StreamClient $clientWork '127.0.0.1' $server.Port | Out-Null
        Stop-ClientReading $clientWork | Out-Null
        $image = Checkpoint-Process -Id $server.Pid -ImagePath (Join-Path $TestDrive 'close-image') -TcpEstablished
        Wait-Until { -not (Test-ProcessAlive $server.Pid) } 'the checkpointed server to end'
        @(Get-LockTable).Count | Should -Be 1 -Because 'the lock stays between the checkpoint and the restore'

        Restore-Process $image.Path -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'TcpEstablishedRequired,CriuPS.Cmdlets.RestoreProcessCommand'
        $errors[0].Exception.Message | Should -Match "TCP connection 127\.0\.0\.1:$($server.Port) to 127\.0\.0\.1:\d+"
        Test-ProcessAlive $server.Pid | Should -BeFalse
        @(Get-LockTable).Count | Should -Be 1 -Because 'a refused restore keeps the connection locked for a second try'

        Restore-Process $image.Path -TcpClose | Out-Null
        Register-TestProcess $server.Pid
        Get-LockTable | Should -BeNullOrEmpty
        Resume-ClientReading $clientWork
        Wait-ClientResult $clientWork | Should -Match '^ERROR .*(reset|end of stream)' -Because 'the peer of a connection restored closed sees it end'
        # The server reads the end of the stream, or fails to write to it (it has echo data waiting).
        Wait-Until { (Test-Path (Join-Path $serverWork 'server.log')) -and (Get-Content (Join-Path $serverWork 'server.log') -Raw) -match 'EOF|BrokenPipe' } 'the restored server to see its connection closed'
    }

    It 'refuses a restore whose port another process took, naming both, leaving nothing behind and no lock' {
        $serverWork = Join-Path $TestDrive 'taken-server'
        $clientWork = Join-Path $TestDrive 'taken-client'
        New-Item -ItemType Directory -Force $clientWork | Out-Null
        $server = Start-StreamServer $serverWork '127.0.0.1'
        Start-StreamClient $clientWork '127.0.0.1' $server.Port | Out-Null
        Stop-ClientReading $clientWork | Out-Null
        $image = Checkpoint-Process -Id $server.Pid -ImagePath (Join-Path $TestDrive 'taken-image') -TcpEstablished
        Wait-Until { -not (Test-ProcessAlive $server.Pid) } 'the checkpointed server to end'

        $intruderWork = Join-Path $TestDrive 'intruder'
        $intruderScript = "import os, socket, time; s = socket.socket(); s.bind(('127.0.0.1', $($server.Port))); s.listen(1); open('ready', 'w').write(str(os.getpid()))`nwhile True: time.sleep(1)"
        $intruder = Start-TestTarget -Program $Python -Arguments '-c', $intruderScript -WorkDirectory $intruderWork

        Restore-Process $image.Path -TcpEstablished -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'AddressInUse,CriuPS.Cmdlets.RestoreProcessCommand'
        $errors[0].Exception.Message | Should -Match "127\.0\.0\.1:$($server.Port) is in use by .*process $intruder 'python3'"
        Test-ProcessAlive $server.Pid | Should -BeFalse -Because 'nothing is left half-restored'
        Get-LockTable | Should -BeNullOrEmpty -Because 'a failed restore removes the lock'
        Resume-ClientReading $clientWork
        Wait-ClientResult $clientWork | Should -Match '^ERROR' -Because 'the connection ended with the failed restore'
    }
}
