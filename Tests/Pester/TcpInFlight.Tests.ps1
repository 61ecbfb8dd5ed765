# End to end: a TCP listener with connections the kernel has completed and the process has not accepted yet
# (Tests/Targets/tcpinflight.c), IPv4 and IPv6. Without -SkipInFlight it is refused before the freeze, naming the
# switch; with it (CRIU's --skip-in-flight) the listener is saved and its pending connections dropped: the restored
# listener serves new connections, the old clients see a reset, and a process left running keeps both connections.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS

    # Two clients of the test itself connected to the target's listener on PORT, each having sent "hello-N".
    function Connect-PendingClients([int]$Family, [int]$Port) {
        $address = if ($Family -eq 6) { [ipaddress]::IPv6Loopback } else { [ipaddress]::Loopback }
        foreach ($n in 1, 2) {
            $client = [System.Net.Sockets.Socket]::new($address.AddressFamily, 'Stream', 'Tcp')
            $client.Connect($address, $Port)
            [void]$client.Send([Text.Encoding]::ASCII.GetBytes("hello-$n"))
            $client.ReceiveTimeout = 10000
            $client
        }
    }

    # What a client reads next: the text, 'end of file', or the socket error (ConnectionReset...).
    function Read-Client([System.Net.Sockets.Socket]$Client) {
        $buffer = [byte[]]::new(64)
        try {
            $count = $Client.Receive($buffer)
            if ($count -eq 0) { 'end of file' } else { [Text.Encoding]::ASCII.GetString($buffer, 0, $count) }
        }
        catch [System.Management.Automation.MethodInvocationException] {
            "$($_.Exception.InnerException.SocketErrorCode)"
        }
    }

    # The accept queue of the listener on PORT as ss reports it (Recv-Q of a listener).
    function Get-AcceptQueue([int]$Port) {
        $line = @(& ss -Hltn "sport = :$Port")[0]
        [int](($line -split '\s+')[1])
    }
}

Describe 'TCP listeners with connections not accepted yet (-SkipInFlight)' {
    AfterEach {
        Stop-TestProcesses
        foreach ($client in @($script:clients)) { if ($client) { $client.Dispose() } }
        $script:clients = @()
    }

    It 'saves an IPv<Family> listener whose own clients wait in its queue, drops them, and the restored listener serves a new one while the old clients get a reset' -ForEach @(
        @{ Family = 4 }, @{ Family = 6 }
    ) {
        $work = Join-Path $TestDrive "inside$Family"
        $log = Join-Path $work 'tcpinflight.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'tcpinflight') -Arguments $work, $Family, 'inside' -WorkDirectory $work
        $port = [int](Get-Content (Join-Path $work 'port') -Raw)
        Get-AcceptQueue $port | Should -Be 2

        # The clients are established connections of the tree: -TcpEstablished saves them (as in CRIU's zdtm test).
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive "inside$Family-image") -TcpEstablished -SkipInFlight
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        $dropped = @(Get-Content (Join-Path $image.Path 'dump.log') | Select-String 'connection\(s\) waiting to be accepted are dropped')
        $dropped.Count | Should -Be 1
        $dropped[0].Line | Should -Match "TCP socket listening on .*:$port .*: 2 connection\(s\)"
        # Only the two clients have a stream: the accepted ends never were the process's.
        @(Get-ChildItem $image.Path -Filter 'tcp-stream-*.img').Count | Should -Be 2

        $restored = Restore-Process $image.Path -TcpEstablished
        Register-TestProcess $restored.Id
        Get-LockTable | Should -BeNullOrEmpty
        Invoke-SelfCheck $target $log -TimeoutSeconds 60 | Should -Be "OK pid=$target" -Because 'the queue is empty, each old client gets ECONNRESET, and a new connection is accepted and served'
    }

    It 'saves an IPv<Family> listener whose clients are outside the tree without -TcpEstablished, says in -Verbose how many it drops, and those clients get a reset' -ForEach @(
        @{ Family = 4 }, @{ Family = 6 }
    ) {
        $work = Join-Path $TestDrive "outside$Family"
        $log = Join-Path $work 'tcpinflight.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'tcpinflight') -Arguments $work, $Family, 'outside' -WorkDirectory $work
        $port = [int](Get-Content (Join-Path $work 'port') -Raw)
        $script:clients = @(Connect-PendingClients $Family $port)
        Wait-Until { (Get-AcceptQueue $port) -eq 2 } 'both connections to wait in the queue'

        $output = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive "outside$Family-image") -SkipInFlight -Verbose 4>&1
        $verbose = @($output | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] } | Where-Object Message -Match 'waiting to be accepted are dropped')
        $verbose.Count | Should -Be 1
        $verbose[0].Message | Should -Match "TCP socket listening on .*:$port \(process $target, fd \d+\): 2 connection\(s\) waiting to be accepted are dropped from the image \(-SkipInFlight\)"
        $image = $output | Where-Object { $_ -isnot [System.Management.Automation.VerboseRecord] }
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        # The listener went with the process: the kernel reset the connections it had not handed over.
        foreach ($client in $script:clients) { Read-Client $client | Should -Be 'ConnectionReset' }

        $restored = Restore-Process $image.Path
        Register-TestProcess $restored.Id
        Invoke-SelfCheck $target $log -TimeoutSeconds 60 | Should -Be "OK pid=$target" -Because 'the queue is empty and a new connection is accepted and served'
    }

    It 'refuses, before freezing, a listener with connections not accepted yet without -SkipInFlight, naming the switch, and leaves both connections to the process' {
        $work = Join-Path $TestDrive 'refused'
        $log = Join-Path $work 'tcpinflight.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'tcpinflight') -Arguments $work, 6, 'outside' -WorkDirectory $work
        $port = [int](Get-Content (Join-Path $work 'port') -Raw)
        $script:clients = @(Connect-PendingClients 6 $port)
        Wait-Until { (Get-AcceptQueue $port) -eq 2 } 'both connections to wait in the queue'

        Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'refused-image') -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $errors[0].Exception.Message | Should -Match 'nothing was frozen'
        $errors[0].Exception.Message | Should -Match "(?s)process $target.*TCP socket listening on \[::1\]:$port has 2 connection\(s\) waiting to be accepted.*-SkipInFlight saves the listener and drops them"
        $errors[0].ErrorDetails.RecommendedAction | Should -Match '-SkipInFlight'
        Join-Path $TestDrive 'refused-image' | Should -Not -Exist

        Invoke-SelfCheck $target $log -Signal USR2 | Should -Be "OK pid=$target" -Because 'the process accepts both connections and reads their data'
        foreach ($n in 1, 2) { Read-Client $script:clients[$n - 1] | Should -Be "reply-$n" }
    }

    It 'with -LeaveRunning keeps the pending connections of the IPv<Family> listener (clients <Clients>): the process accepts both afterwards' -ForEach @(
        @{ Family = 4; Clients = 'inside' }, @{ Family = 6; Clients = 'outside' }
    ) {
        $work = Join-Path $TestDrive "running$Family"
        $log = Join-Path $work 'tcpinflight.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'tcpinflight') -Arguments $work, $Family, $Clients -WorkDirectory $work
        $port = [int](Get-Content (Join-Path $work 'port') -Raw)
        if ($Clients -eq 'outside') { $script:clients = @(Connect-PendingClients $Family $port) }
        Wait-Until { (Get-AcceptQueue $port) -eq 2 } 'both connections to wait in the queue'

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive "running$Family-image") -LeaveRunning -SkipInFlight -TcpEstablished:($Clients -eq 'inside')
        Test-ProcessAlive $target | Should -BeTrue
        Get-Content (Join-Path $image.Path 'dump.log') | Select-String ': 2 connection\(s\) waiting to be accepted are dropped' | Should -Not -BeNullOrEmpty
        Get-LockTable | Should -BeNullOrEmpty
        Get-AcceptQueue $port | Should -Be 2 -Because 'the dump took nothing from the queue'

        Invoke-SelfCheck $target $log -Signal USR2 | Should -Be "OK pid=$target" -Because 'both connections are still pending, in order, with their data, and answer'
        foreach ($client in $script:clients) { $n = [array]::IndexOf($script:clients, $client) + 1; Read-Client $client | Should -Be "reply-$n" }
    }
}
