# End to end: a process in a network namespace of its own keeps it. A python server (Tests/Targets/netnsserver.py) in
# a namespace with its loopback and a veth whose peer is on the host, addresses on both ends (IPv4 /30 and IPv6), a
# route and changed sysctls, is checkpointed, its namespace deleted, and restored into a new namespace made from the
# image: a client on the host reaches it through the veth (TCP over IPv4 and IPv6, UDP), an established connection
# survives with -TcpEstablished, and the addresses, route, MAC address and sysctls are those it had. -NetworkNamespace
# joins an existing namespace instead; -ExternalVeth names the outer end; a failed restore leaves no veth behind;
# devices of other kinds (a bridge here) are refused before the freeze, naming them.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source
    $script:Nsenter = (Get-Command nsenter -CommandType Application | Select-Object -First 1).Source
    $script:Server = Join-Path (Get-RepositoryRoot) 'Tests/Targets/netnsserver.py'
    $script:Namespaces = [System.Collections.Generic.List[string]]::new()
    $script:Links = [System.Collections.Generic.List[string]]::new()

    function Invoke-Ip {
        $out = & ip @args 2>&1
        if ($LASTEXITCODE -ne 0) { throw "ip $args failed: $out" }
        $out
    }

    # A namespace criups-test-<name>-<pid> with lo up and, with -Veth, a veth: eth0 inside (10.231.N.2/30,
    # fd00:231:N::2/64), the outer end on the host ($Outer, 10.231.N.1/30, fd00:231:N::1/64), a route to
    # 10.232.N.0/24 through the host end, and changed sysctls (eth0's IPv6 hop_limit, its IPv4 arp_ignore,
    # net.unix.max_dgram_qlen).
    function New-TestNamespace([string]$Name, [int]$Net, [string]$Outer) {
        $ns = "criups-test-$Name-$PID"
        $script:Namespaces.Add($ns)
        Invoke-Ip netns add $ns | Out-Null
        Invoke-Ip -n $ns link set lo up | Out-Null
        if ($Outer) {
            $script:Links.Add($Outer)
            Invoke-Ip link add $Outer type veth peer name eth0 netns $ns | Out-Null
            Set-HostEnd $Outer $Net
            Invoke-Ip -n $ns addr add "10.231.$Net.2/30" dev eth0 | Out-Null
            Invoke-Ip -n $ns addr add "fd00:231:$Net::2/64" dev eth0 nodad | Out-Null
            Invoke-Ip -n $ns link set eth0 up | Out-Null
            Invoke-Ip -n $ns route add "10.232.$Net.0/24" via "10.231.$Net.1" | Out-Null
            & $Nsenter "--net=/run/netns/$ns" sysctl -q -w net.ipv6.conf.eth0.hop_limit=33 net.ipv4.conf.eth0.arp_ignore=2 net.unix.max_dgram_qlen=77
            $LASTEXITCODE | Should -Be 0
        }
        $ns
    }

    # The host end's addresses: what a user gives the outer end of an external veth after a restore, as with CRIU.
    function Set-HostEnd([string]$Outer, [int]$Net) {
        Invoke-Ip addr add "10.231.$Net.1/30" dev $Outer | Out-Null
        Invoke-Ip addr add "fd00:231:$Net::1/64" dev $Outer nodad | Out-Null
        Invoke-Ip link set $Outer up | Out-Null
    }

    function Start-Server([string]$Namespace, [string]$Work) {
        Start-TestTarget -Program $Nsenter -Arguments @("--net=/run/netns/$Namespace", $Python, $Server, $Work) -WorkDirectory $Work
    }

    # What a namespace looks like from inside: addresses, routes, eth0's MAC, the sysctls changed above.
    function Get-NamespaceView([string]$NsPath) {
        $in = { & $Nsenter "--net=$NsPath" @args }
        [pscustomobject]@{
            Addresses = @(& $in ip -o addr show | ForEach-Object { ($_ -split '\s+')[1, 3] -join ' ' } | Where-Object { $_ -notmatch ' fe80:' } | Sort-Object) -join ', '
            Routes    = @(& $in ip route show | Sort-Object) -join ', '
            Mac       = (& $in cat /sys/class/net/eth0/address 2>$null)
            Sysctls   = (& $in sysctl -n net.ipv6.conf.eth0.hop_limit net.ipv4.conf.eth0.arp_ignore net.unix.max_dgram_qlen 2>$null) -join ' '
        }
    }

    function Send-Line([System.Net.Sockets.TcpClient]$Client, [string]$Line) {
        $stream = $Client.GetStream()
        $stream.ReadTimeout = 10000
        $bytes = [Text.Encoding]::ASCII.GetBytes("$Line`n")
        $stream.Write($bytes, 0, $bytes.Length)
        (New-Object IO.StreamReader($stream)).ReadLine()
    }

    function Test-Tcp([string]$Address, [string]$Line) {
        $client = [System.Net.Sockets.TcpClient]::new()
        try {
            if (-not $client.ConnectAsync($Address, 7000).Wait(10000)) { throw "no connection to $Address" }
            Send-Line $client $Line
        }
        finally { $client.Dispose() }
    }

    function Test-Udp([string]$Address, [string]$Text) {
        $udp = [System.Net.Sockets.UdpClient]::new()
        try {
            $udp.Client.ReceiveTimeout = 10000
            $bytes = [Text.Encoding]::ASCII.GetBytes($Text)
            [void]$udp.Send($bytes, $bytes.Length, $Address, 7001)
            $from = [System.Net.IPEndPoint]::new([System.Net.IPAddress]::Any, 0)
            [Text.Encoding]::ASCII.GetString($udp.Receive([ref]$from))
        }
        finally { $udp.Dispose() }
    }

    function Test-LinkExists([string]$Name) { Test-Path "/sys/class/net/$Name" }
}

AfterAll {
    Stop-TestProcesses
    foreach ($link in $Links) { & ip link del $link 2>$null }
    foreach ($ns in $Namespaces) { & ip netns del $ns 2>$null }
}

Describe 'A server in a network namespace of its own' {
    AfterEach { Stop-TestProcesses }

    It 'comes back in a new namespace made from the image: veth, addresses, route, sysctls, TCP, UDP and an established connection' {
        $outer = "cpsv$PID"
        $ns = New-TestNamespace 'veth' 7 $outer
        $work = Join-Path $TestDrive 'veth'
        $target = Start-Server $ns $work
        $before = Get-NamespaceView "/run/netns/$ns"
        $before.Addresses | Should -Match '10\.231\.7\.2/30.*fd00:231:7::2/64'
        $before.Sysctls | Should -Be '33 2 77'
        $established = [System.Net.Sockets.TcpClient]::new()
        $established.ConnectAsync('10.231.7.2', 7000).Wait(10000) | Should -BeTrue
        Send-Line $established 'before' | Should -Be "pid=$target before"

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'veth-image') -TcpEstablished
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed server to end'
        foreach ($file in 'netdev', 'netns', 'ifaddr', 'route', 'route6') { @(Get-ChildItem $image.Path -Filter "$file-*.img").Count | Should -Be 1 -Because "$file-ID.img holds the namespace" }
        (Get-CheckpointImage $image.Path -ErrorAction Stop).Path | Should -Be $image.Path -Because 'the namespace''s images read as any other'
        Invoke-Ip netns delete $ns | Out-Null
        Wait-Until { -not (Test-LinkExists $outer) } 'the veth to go with its namespace'

        $restored = Restore-Process $image.Path -TcpEstablished
        Register-TestProcess $restored.Id
        $restored.Id | Should -Be $target
        (Get-Item "/proc/$target/ns/net").LinkTarget | Should -Not -Be (Get-Item /proc/self/ns/net).LinkTarget -Because 'it lives in a namespace of its own again'
        $made = Get-Content (Join-Path $image.Path 'restore.log') -Raw
        $made | Should -Match 'a new network namespace net:\[\d+\] made from the image: 2 device\(s\) \(lo, eth0\)'
        Write-Host "    frozen $([int]$image.FrozenTime.TotalMilliseconds) ms, restore $([int]$restored.RestoreTime.TotalMilliseconds) ms, of which the namespace $(($made -replace '(?s).*made from the image:[^\n]*; ([\d.]+) ms.*', '$1')) ms"
        (Get-Content "/sys/class/net/$outer/operstate") | Should -Be 'up' -Because 'the outer end is made here under its saved name, up'
        $after = Get-NamespaceView "/proc/$target/ns/net"
        $after.Addresses | Should -Be $before.Addresses
        $after.Routes | Should -Be $before.Routes
        $after.Mac | Should -Be $before.Mac
        $after.Sysctls | Should -Be '33 2 77'

        Set-HostEnd $outer 7
        Send-Line $established 'after' | Should -Be "pid=$target after" -Because 'the established connection carries on'
        $established.Dispose()
        Test-Tcp '10.231.7.2' 'v4' | Should -Be "pid=$target v4"
        Test-Tcp 'fd00:231:7::2' 'v6' | Should -Be "pid=$target v6"
        Test-Udp '10.231.7.2' 'udp' | Should -Be "pid=$target udp"
        Invoke-SelfCheck $target (Join-Path $work 'netns.log') | Should -Be "OK pid=$target"
        Get-LockTable | Should -BeNullOrEmpty
    }

    It 'takes the outer end''s name from -ExternalVeth, and a failed restore leaves no veth behind' {
        $outer = "cpsw$PID"
        $ns = New-TestNamespace 'ext' 8 $outer
        $work = Join-Path $TestDrive 'ext'
        $target = Start-Server $ns $work
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'ext-image')
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed server to end'
        Invoke-Ip netns delete $ns | Out-Null
        Wait-Until { -not (Test-LinkExists $outer) } 'the veth to go with its namespace'

        # A failure after the namespace and its veth were made.
        $env:CRIUPS_FAIL_AT = 'after-files'
        try { { Restore-Process $image.Path -ErrorAction Stop } | Should -Throw }
        finally { $env:CRIUPS_FAIL_AT = $null }
        Test-LinkExists $outer | Should -BeFalse -Because 'a failed restore deletes the veth it made'
        Test-ProcessAlive $target | Should -BeFalse

        # The saved name taken here: refused naming it, and nothing is left.
        $script:Links.Add("cpsd$PID")
        Invoke-Ip link add $outer type veth peer name "cpsd$PID" | Out-Null
        try {
            $failure = $null
            try { Restore-Process $image.Path -ErrorAction Stop | Out-Null } catch { $failure = $_ }
            $failure.FullyQualifiedErrorId | Should -Be 'RestoreFailed,CriuPS.Cmdlets.RestoreProcessCommand'
            $failure.Exception.Message | Should -BeLike "*veth device 'eth0' with its outer end '$outer'*File exists*"
            Test-ProcessAlive $target | Should -BeFalse
        }
        finally { & ip link del $outer 2>$null }

        # A damaged address dump (its digest recorded no more, as CRIU's images come): ImageCorrupt naming the file,
        # found after the veth was made, which goes again.
        $damaged = Join-Path $TestDrive 'ext-damaged'
        Copy-Item $image.Path $damaged -Recurse
        Remove-Item (Join-Path $damaged 'criups-digests.img')
        $ifaddr = Get-ChildItem $damaged -Filter 'ifaddr-*.img'
        $bytes = [IO.File]::ReadAllBytes($ifaddr.FullName); $bytes[0] = 0x99; [IO.File]::WriteAllBytes($ifaddr.FullName, $bytes)
        $failure = $null
        try { Restore-Process $damaged -ErrorAction Stop | Out-Null } catch { $failure = $_ }
        $failure.FullyQualifiedErrorId | Should -Be 'ImageCorrupt,CriuPS.Cmdlets.RestoreProcessCommand'
        $failure.Exception.Message | Should -BeLike "$($ifaddr.FullName): this is not an iproute2 dump*"
        Test-LinkExists $outer | Should -BeFalse

        { Restore-Process $image.Path -ExternalVeth @{ eth0 = 'a/b' } -ErrorAction Stop } | Should -Throw "*-ExternalVeth names 'a/b' as the outer end of 'eth0': a device name has 1 to 15 characters*"
        $renamed = "cpsx$PID"
        $script:Links.Add($renamed)
        $restored = Restore-Process $image.Path -ExternalVeth @{ eth0 = $renamed }
        Register-TestProcess $restored.Id
        Test-LinkExists $outer | Should -BeFalse
        (Get-Content "/sys/class/net/$renamed/operstate") | Should -Be 'up'
        Set-HostEnd $renamed 8
        Test-Tcp '10.231.8.2' 'renamed' | Should -Be "pid=$target renamed"
        Invoke-SelfCheck $target (Join-Path $work 'netns.log') | Should -Be "OK pid=$target"
    }

    It 'joins an existing namespace with -NetworkNamespace, where no saved device is made' {
        $ns = New-TestNamespace 'join' 9
        $work = Join-Path $TestDrive 'join'
        $target = Start-Server $ns $work
        $link = (Get-Item "/proc/$target/ns/net").LinkTarget
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'join-image')
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed server to end'
        $failure = $null
        try { Restore-Process $image.Path -NetworkNamespace /etc/hostname -ErrorAction Stop | Out-Null } catch { $failure = $_ }
        $failure.FullyQualifiedErrorId | Should -Be 'RestoreFailed,CriuPS.Cmdlets.RestoreProcessCommand'
        $failure.Exception.Message | Should -Be "'/etc/hostname' is not a network namespace."
        Test-ProcessAlive $target | Should -BeFalse

        $restored = Restore-Process $image.Path -NetworkNamespace "/run/netns/$ns"
        Register-TestProcess $restored.Id
        (Get-Item "/proc/$target/ns/net").LinkTarget | Should -Be $link -Because 'it joined the namespace named'
        Get-Content (Join-Path $image.Path 'restore.log') -Raw | Should -Match "the tree joins the network namespace '$ns'"
        Invoke-SelfCheck $target (Join-Path $work 'netns.log') | Should -Be "OK pid=$target"
    }

    It 'refuses a namespace with a device of another kind before freezing, naming it, and the server runs on' {
        $ns = New-TestNamespace 'bridge' 10
        Invoke-Ip -n $ns link add cpsbridge type bridge | Out-Null
        $work = Join-Path $TestDrive 'bridge'
        $target = Start-Server $ns $work
        $failure = $null
        try { Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'bridge-image') -ErrorAction Stop | Out-Null } catch { $failure = $_ }
        $failure.FullyQualifiedErrorId | Should -BeLike 'Unsupported,*'
        $failure.Exception.Message | Should -BeLike "*the bridge device 'cpsbridge'*loopback and veth devices*"
        Test-Path (Join-Path $TestDrive 'bridge-image') | Should -BeFalse
        Invoke-SelfCheck $target (Join-Path $work 'netns.log') | Should -Be "OK pid=$target" -Because 'it runs on untouched'
    }
}
