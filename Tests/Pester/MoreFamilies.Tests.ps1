# End to end: sockets of the other families and protocols (Tests/Targets/morefamilies.c, in a network namespace of
# the test's own whose net.ipv4.ping_group_range lets root make ping sockets): raw IPv4 and IPv6 sockets with their
# ICMP filters, IP_HDRINCL and IP_NODEFRAG (one connected with port 0, which only /proc/net/raw shows), ICMP "ping"
# sockets with their echo identifier, UDP-Lite with its checksum coverage, IP options CRIU does not save
# (IP_RECVERR, IP_TRANSPARENT, IP_OPTIONS, IP_MTU_DISCOVER...), a UDP socket bound with IP_FREEBIND to an address
# the machine lacks, and netlink sockets (bound port, groups above 32, flags, type, a connected pair): each
# checkpointed, killed, restored, and working. And the one refusal: a netlink socket with a message waiting.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
}

Describe 'Sockets of other families' {
    AfterEach { Stop-TestProcesses }

    It 'restores raw, ping, UDP-Lite and netlink sockets with their options, which work again' {
        $namespace = "criups-families-$PID"
        try {
            & ip netns add $namespace
            & ip -n $namespace link set lo up
            & ip netns exec $namespace sysctl -qw 'net.ipv4.ping_group_range=0 0'
            $LASTEXITCODE | Should -Be 0 -Because 'the test sets up its network namespace'
            $work = Join-Path $TestDrive 'families'
            $log = Join-Path $work 'morefamilies.log'
            $nsenter = (Get-Command nsenter -CommandType Application | Select-Object -First 1).Source
            $target = Start-TestTarget -Program $nsenter -Arguments "--net=/run/netns/$namespace", (Get-TestTarget 'morefamilies'), $work -WorkDirectory $work

            $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'families-image')
            $inet = @($image.Processes.Files | Where-Object Type -EQ 'INETSK').Target
            $inet | Should -Contain 'raw IPv4 socket of protocol 1 bound to 127.0.0.1'
            $inet | Should -Contain 'raw IPv4 socket of protocol 253 bound to 127.0.0.1 connected to 127.0.0.1' -Because 'connect(2) chose its source address'
            $inet | Should -Contain 'raw IPv6 socket of protocol 58'
            $inet | Should -Contain 'ICMP (ping) socket 127.0.0.1:4242 connected to 127.0.0.1:0'
            $inet | Should -Contain 'ICMP (ping) socket (unbound, IPv6)'
            $inet | Should -Contain 'UDP socket bound to 192.0.2.1:7000'
            @($inet | Where-Object { $_ -like 'UDP-Lite socket *' }).Count | Should -Be 2
            $netlink = @($image.Processes.Files | Where-Object Type -EQ 'NETLINKSK').Target
            $netlink | Should -Contain "netlink socket (protocol 0, NETLINK_ROUTE, port $target)"
            $netlink | Should -Contain 'netlink socket (protocol 0, NETLINK_ROUTE, unbound)'
            $netlink | Should -Contain 'netlink socket (protocol 2, port 5000)'
            $netlink | Should -Contain 'netlink socket (protocol 2, port 5001)'
            Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'

            Restore-Process $image.Path -NetworkNamespace "/run/netns/$namespace" | Out-Null
            Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'every option and address is back, pings get replies the raw sockets see through their filters, a hand-made IP packet and a UDP-Lite datagram arrive, and the netlink sockets add an address, hear of it and talk to each other'
        }
        finally {
            Stop-TestProcesses
            & ip netns del $namespace 2>$null
        }
    }

    It 'refuses, before freezing, a netlink socket with a message waiting to be read, naming it' {
        $work = Join-Path $TestDrive 'netlink-waiting'
        $script = "import os, socket, time; s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2); s.bind((0, 0)); " +
            "t = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2); t.bind((0, 0)); t.sendto(b'x' * 24, (s.getsockname()[0], 0)); " +
            "open('ready', 'w').write(str(os.getpid()))`nwhile True: time.sleep(1)"
        $python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source
        $target = Start-TestTarget -Program $python -Arguments '-c', $script -WorkDirectory $work

        Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'netlink-waiting-image') -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $errors[0].Exception.Message | Should -Match 'fd \d+: netlink socket \(protocol 2, port \d+\) has a message of 24 bytes waiting to be read'
        Test-ProcessAlive $target | Should -BeTrue
    }
}
