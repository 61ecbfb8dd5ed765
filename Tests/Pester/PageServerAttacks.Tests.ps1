# The page server trusts no one: each attack of the issue (a client that trickles bytes, hundreds of idle
# connections, a commit without credentials, files after a commit, a file bomb) is made against a page server by a
# hostile client of our own (PageServerAttacker.psm1), and then a legitimate checkpoint (or restore) goes through
# in its normal time. The frame deadline is short here (2 s) to keep each attack to seconds; the idle one stays 30 s
# (a checkpoint's client is silent while it freezes and inspects the process) but where it is the attack.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    Import-Module (Join-Path $PSScriptRoot 'PageServerAttacker.psm1') -Force
    $script:LazyMem = Get-TestTarget 'lazymem'
    $script:Checkpoint = 'CriuPS.Cmdlets.CheckpointProcessCommand'
    $script:Version = [int][CriuPS.Engine.PageServer.LazyPageServer].Assembly.GetType('CriuPS.Engine.PageServer.PageServerMessages').GetField('Version').GetValue($null)
    $script:Short = @{ FrameTimeout = 2 }

    $script:ServerCertificate = New-TestCertificate 'attacks-server' $TestDrive
    $script:ClientCertificate = New-TestCertificate 'attacks-client' $TestDrive
    $script:ClientIdentity = [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($ClientCertificate.Path, $ClientCertificate.KeyPath)
    $script:MutualTls = @{ CertificatePath = $ServerCertificate.Path; KeyPath = $ServerCertificate.KeyPath; ClientThumbprint = $ClientCertificate.Certificate.Thumbprint }
    $script:ClientTrust = @{ PageServerThumbprint = $ServerCertificate.Certificate.Thumbprint; ClientCertificate = $ClientIdentity }

    function Start-LazyTarget([string]$Name, [int]$MiB = 16) {
        $work = Join-Path $TestDrive $Name
        $log = Join-Path $work 'lazymem.log'
        @{ Id = (Start-TestTarget -Program $LazyMem -Arguments "$MiB", $log -WorkDirectory $work); Log = $log; Work = $work }
    }

    # A legitimate checkpoint of a fresh 16 MiB process to SERVER: the result, and the seconds it took.
    function Invoke-LegitimateCheckpoint($Server, [string]$Name, [hashtable]$Trust = @{}) {
        $t = Start-LazyTarget $Name
        $clock = [Diagnostics.Stopwatch]::StartNew()
        $sent = Checkpoint-Process -Id $t.Id -PageServer "127.0.0.1:$($Server.Port)" @Trust
        [pscustomobject]@{ Sent = $sent; Seconds = $clock.Elapsed.TotalSeconds; Target = $t }
    }

    function Get-OpenDescriptors { @(Get-ChildItem /proc/self/fd).Count }

    function Get-WorkDirectories([string]$Image) { @(Get-ChildItem (Split-Path $Image) -Force -Filter ".$(Split-Path $Image -Leaf).criups-*") }

    # The normal time of a legitimate checkpoint: the second to a server nobody attacks, in this session (the first
    # warms the code up, as it is for those made during the attacks). During an attack it may take three times
    # that, plus 3 s for a busy machine: every attack here held the server 30 s or more before.
    $baseline = foreach ($run in 1, 2) {
        $quiet = Start-LazyPageServer -ImagePath (Join-Path $TestDrive "quiet-image-$run") @Short
        (Invoke-LegitimateCheckpoint $quiet "quiet-$run").Seconds
        $quiet | Stop-LazyPageServer
    }
    $baseline = $baseline[-1]
    Stop-TestProcesses
    $script:NormalSeconds = 3 * $baseline + 3
    Write-Host "A legitimate checkpoint takes $([math]::Round($baseline, 2)) s without attack; allowed during one: $([math]::Round($NormalSeconds, 2)) s"
}

Describe 'A page server under attack' {
    AfterEach {
        Get-LazyPageServer -State Listening, Receiving, Serving | Stop-LazyPageServer
        Stop-TestProcesses
    }

    It 'cuts off a client that trickles its Hello a byte a second, and serves a checkpoint meanwhile' {
        $image = Join-Path $TestDrive 'slow'
        $server = Start-LazyPageServer -ImagePath $image @Short
        $slow = Start-SlowClient -Port $server.Port -Version $Version -IntervalSeconds 1
        try {
            Wait-Until { $server.Connections -ge 1 } 'the slow client to connect'
            $legit = Invoke-LegitimateCheckpoint $server 'slow-legit'
            $legit.Sent.PageServer | Should -Be "127.0.0.1:$($server.Port)"
            $legit.Seconds | Should -BeLessThan $NormalSeconds
            $outcome = $slow | Wait-Job -Timeout 30 | Receive-Job
            # 14 bytes of Hello at a byte a second would take 14 s: it is cut off after the 2 s deadline.
            $outcome | Should -Match '^held the server (\d+(\.\d+)?) s, then it answered closed$'
            [double]($outcome -replace '^held the server (\S+) s.*', '$1') | Should -BeLessThan 4
        }
        finally { $slow | Remove-Job -Force }
        $server.Error.Message | Should -Match 'did not finish its TLS handshake and Hello within 2 s, and was cut off'
        $server.ImagesReceived | Should -Be 1
        Wait-Until { $server.Connections -eq 0 } 'every connection to be closed'
    }

    It 'cuts off a session whose frame stops halfway, and one silent between frames' {
        $server = Start-LazyPageServer -ImagePath (Join-Path $TestDrive 'halfway') -FrameTimeout 2 -IdleTimeout 3
        $halfway = Open-DumpSession -Port $server.Port -Version $Version
        $silent = Open-DumpSession -Port $server.Port -Version $Version
        try {
            $halfway.Answer | Should -BeLike 'Welcome*'
            $silent.Answer | Should -BeLike 'Welcome*'
            # A FileBegin of which only the length and type arrive.
            Send-Bytes $halfway ([byte[]](20, 0, 0, 0, 10))
            $clock = [Diagnostics.Stopwatch]::StartNew()
            Format-Frame (Read-Frame $halfway) | Should -Be 'closed'
            $clock.Elapsed.TotalSeconds | Should -BeLessThan 4 -Because 'the frame deadline is 2 s'
            Format-Frame (Read-Frame $silent) | Should -Be 'closed'
            $clock.Elapsed.TotalSeconds | Should -BeLessThan 5 -Because 'the idle deadline is 3 s'
        }
        finally { $halfway, $silent | ForEach-Object { Close-PageServerConnection $_ } }
        $legit = Invoke-LegitimateCheckpoint $server 'halfway-legit'
        $legit.Seconds | Should -BeLessThan $NormalSeconds
        $server.ConnectionsRefused | Should -Be 2
    }

    It 'holds no more than its limit of 200 idle connections, drops each at its deadline, and serves a checkpoint meanwhile' {
        $server = Start-LazyPageServer -ImagePath (Join-Path $TestDrive 'idle-image') @Short -MaxConnections 32
        $descriptors = Get-OpenDescriptors
        $idle = @(Open-IdleConnections -Port $server.Port -Count 200)
        try {
            $server.Connections | Should -BeLessOrEqual 32
            $legit = Invoke-LegitimateCheckpoint $server 'idle-legit'
            $legit.Seconds | Should -BeLessThan $NormalSeconds
            $server.ImagesReceived | Should -Be 1
            Wait-Until { $server.Connections -eq 0 } 'the idle connections to be dropped' -TimeoutSeconds 6
            # Every one was accepted, then made way for a newer one or was dropped at its deadline.
            $server.ConnectionsRefused | Should -Be 200
        }
        finally { $idle | ForEach-Object { Close-PageServerConnection $_ } }
        # The server's threads and sockets for them are gone (the attacker's own 200 sockets are closed too).
        Wait-Until { (Get-OpenDescriptors) -le $descriptors + 5 } 'the descriptors of the idle connections to be closed'
    }

    It 'refuses a commit from a client without a trusted certificate, then takes the legitimate checkpoint and serves its restore' {
        $image = Join-Path $TestDrive 'mtls'
        $server = Start-LazyPageServer -ImagePath $image @MutualTls @Short
        $server.AuthenticatesClients | Should -BeTrue
        $stranger = (New-TestCertificate 'attacks-stranger' $TestDrive)
        $strangerIdentity = [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($stranger.Path, $stranger.KeyPath)

        $anonymous = Invoke-JunkCommit -Port $server.Port -Version $Version -Tls
        @($anonymous.Steps -like 'Welcome*') | Should -BeNullOrEmpty
        $anonymous.Steps[-1] | Should -Match '^failed|^closed'
        $server.Error.Message | Should -Match 'presented no client certificate'
        $impostor = Invoke-JunkCommit -Port $server.Port -Version $Version -ClientCertificate $strangerIdentity
        $impostor.Steps[-1] | Should -Match '^failed|^closed'
        $server.Error.Message | Should -Match "client certificate CN=attacks-stranger, SHA-1 thumbprint $($stranger.Certificate.Thumbprint), which this server does not trust"
        $server.ImagesReceived | Should -Be 0
        Test-Path $image | Should -BeFalse
        Get-WorkDirectories $image | Should -BeNullOrEmpty

        # Our own cmdlet without the certificate is refused too, and says why.
        $t = Start-LazyTarget 'mtls-without'
        Checkpoint-Process -Id $t.Id -PageServer "127.0.0.1:$($server.Port)" -PageServerThumbprint $ServerCertificate.Certificate.Thumbprint -ErrorVariable failed -ErrorAction SilentlyContinue |
            Should -BeNullOrEmpty
        $failed[0].FullyQualifiedErrorId | Should -Be "PageServerRefused,$Checkpoint"
        $failed[0].Exception.Message | Should -Match 'client certificate'
        $failed[0].ErrorDetails.RecommendedAction | Should -Match '-ClientCertificate'
        Invoke-SelfCheck $t.Id $t.Log 'USR1' | Should -Be "OK pid=$($t.Id)"

        $legit = Invoke-LegitimateCheckpoint $server 'mtls-legit' $ClientTrust
        $legit.Seconds | Should -BeLessThan $NormalSeconds
        $legit.Sent.Tls | Should -BeTrue
        $server.ImagesReceived | Should -Be 1
        Wait-Until { -not (Test-ProcessAlive $legit.Target.Id) } 'the checkpointed process to end'
        $restored = Restore-Process -ImagePath $image -LazyPages -PageServer "127.0.0.1:$($server.Port)" @ClientTrust
        Register-TestProcess $restored.Id
        ($restored | Wait-LazyRestore -Timeout 60).State | Should -Be 'Completed'
        Invoke-SelfCheck $legit.Target.Id $legit.Target.Log 'USR1' | Should -Be "OK pid=$($legit.Target.Id)"
    }

    It 'refuses without authentication off the loopback unless the network is trusted, and then warns' {
        $address = (& ip -4 -o addr show scope global | ForEach-Object { ($_ -split '\s+')[3].Split('/')[0] } | Select-Object -First 1)
        if (-not $address) { Set-ItResult -Skipped -Because 'this machine has no address but the loopback' ; return }
        Start-LazyPageServer -ImagePath (Join-Path $TestDrive 'open') -Address $address -ErrorVariable failed -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $failed[0].FullyQualifiedErrorId | Should -Be 'PageServerUntrusted,CriuPS.Cmdlets.StartLazyPageServerCommand'
        $failed[0].ErrorDetails.RecommendedAction | Should -Match '-ClientCertificate.*-TrustedNetwork'
        Start-LazyPageServer -ImagePath (Join-Path $TestDrive 'open') -Address $address -CertificatePath $ServerCertificate.Path -KeyPath $ServerCertificate.KeyPath -ErrorVariable failed -ErrorAction SilentlyContinue |
            Should -BeNullOrEmpty -Because 'TLS without client certificates authenticates the server only'
        $failed[0].FullyQualifiedErrorId | Should -Be 'PageServerUntrusted,CriuPS.Cmdlets.StartLazyPageServerCommand'
        $server = Start-LazyPageServer -ImagePath (Join-Path $TestDrive 'open') -Address $address -TrustedNetwork -WarningVariable warned -WarningAction SilentlyContinue
        $server.AuthenticatesClients | Should -BeFalse
        $warned[0] | Should -Match 'does not authenticate its clients'
        $server | Stop-LazyPageServer
        $authenticated = Start-LazyPageServer -ImagePath (Join-Path $TestDrive 'open') -Address $address @MutualTls -WarningVariable warned
        $warned | Should -BeNullOrEmpty
        $authenticated | Stop-LazyPageServer
    }

    It 'keeps a committed image final: a file added or replaced after the commit ends the session, and nothing changes' {
        # On the loopback without TLS a client needs no credentials: the commit itself goes through.
        $image = Join-Path $TestDrive 'final'
        $server = Start-LazyPageServer -ImagePath $image @Short
        $junk = Invoke-JunkCommit -Port $server.Port -Version $Version -KeepOpen
        try {
            $junk.Steps[-1] | Should -Be "Committed $image"
            $before = Get-ChildItem $image -Force | ForEach-Object { "$($_.Name) $((Get-FileHash $_.FullName).Hash)" }
            $after = @(Invoke-JunkAfterCommit $junk.Connection)
            $after[-1] | Should -Match '^Error 1 this server ended the dump: it sent FileBegin after the commit: the image .* is committed, and nothing can be added to it or replaced|^failed|^closed'
        }
        finally { Close-PageServerConnection $junk.Connection }
        Get-ChildItem $image -Force | ForEach-Object { "$($_.Name) $((Get-FileHash $_.FullName).Hash)" } | Should -Be $before
        $server.Error.Message | Should -Match 'after the commit'
        # Nor can a new session write into it.
        (Open-DumpSession -Port $server.Port -Version $Version).Answer | Should -Match '^Error 1 .*is not empty'

        # A legitimate checkpoint (to its own server: this one's image is final) goes through in its normal time.
        $other = Start-LazyPageServer -ImagePath (Join-Path $TestDrive 'final-legit-image') @Short
        $legit = Invoke-LegitimateCheckpoint $other 'final-legit'
        $legit.Seconds | Should -BeLessThan $NormalSeconds
        (Get-ChildItem (Join-Path $TestDrive 'final-legit-image')).Name | Should -Not -Contain 'stats-dump' -Because 'what follows the commit stays on the source'
        Test-Path ($legit.Sent.LogPath -replace '\.log$', '-stats-dump') | Should -BeTrue
    }

    It 'refuses a file bomb: <Case>, keeping nothing and holding no descriptor' -ForEach @(
        @{ Case = '3000 files open at once'; Files = 3000; Bytes = 0; Expect = 'kept more than 32 image files open at once' }
        @{ Case = 'a file larger than the limit'; Files = 0; Bytes = 1GB; Expect = 'sent more than 64 MiB, this server''s limit for a dump' }
    ) {
        $image = Join-Path $TestDrive "bomb-$Files"
        $server = Start-LazyPageServer -ImagePath $image @Short -MaxImageSize 64MB
        $descriptors = Get-OpenDescriptors
        $bomb = Invoke-FileBomb -Port $server.Port -Version $Version -Files $Files -Bytes $Bytes
        $bomb.FilesOpened | Should -BeLessOrEqual 3000
        $bomb.BytesSent | Should -BeLessThan 128MB -Because 'the server stops reading at 64 MiB'
        $bomb.Outcome + $bomb.Answer | Should -Match "stopped|$Expect"
        # The server records why once its session has ended, which may be just after the bomb read the Error.
        Wait-Until { $server.Error } 'the server to record why it ended the session'
        $server.Error.Message | Should -Match $Expect
        Wait-Until { $server.Connections -eq 0 } 'the bomb''s connection to be closed'
        (Get-OpenDescriptors) | Should -BeLessOrEqual ($descriptors + 5)
        Test-Path $image | Should -BeFalse
        Get-WorkDirectories $image | Should -BeNullOrEmpty
        $legit = Invoke-LegitimateCheckpoint $server "bomb-legit-$Files"
        $legit.Seconds | Should -BeLessThan $NormalSeconds
        $server.ImagesReceived | Should -Be 1
    }

    It 'refuses a file name that would leave the image directory (<Name>), creating nothing' -ForEach @(
        @{ Name = '../escaped.img' }, @{ Name = '/tmp/escaped.img' }, @{ Name = '.hidden.img' }
    ) {
        $image = Join-Path $TestDrive 'traversal'
        $server = Start-LazyPageServer -ImagePath $image @Short
        $session = Open-DumpSession -Port $server.Port -Version $Version
        try {
            Send-FileBegin $session 1 $Name
            $answer = try { Format-Frame (Read-Frame $session) } catch { 'reset' }
            $answer | Should -BeIn 'closed', 'reset' -Because 'the server ends the session at the name'
        }
        finally { Close-PageServerConnection $session }
        $server.Error.Message | Should -Match ([regex]::Escape("sent a file '$Name' (id 1) that cannot be an image file here"))
        Test-Path (Join-Path $TestDrive 'escaped.img') | Should -BeFalse
        Test-Path /tmp/escaped.img | Should -BeFalse
        Get-WorkDirectories $image | Should -BeNullOrEmpty
    }

    It 'refuses a checkpoint of more files than -MaxImageFiles' {
        $image = Join-Path $TestDrive 'many'
        $server = Start-LazyPageServer -ImagePath $image @Short -MaxImageFiles 10
        $session = Open-DumpSession -Port $server.Port -Version $Version
        try {
            1..10 | ForEach-Object { Send-File $session $_ "core-$_.img" ([byte[]](1, 2, 3)) }
            # The server ends the dump at the 11th name and closes: the rest of that file may find the connection gone.
            try { Send-File $session 11 'core-11.img' ([byte[]](1, 2, 3)) }
            catch { if ($_.Exception.GetBaseException() -isnot [System.Net.Sockets.SocketException]) { throw } }
            Format-Frame (Read-Frame $session) | Should -Match '^Error 1 this server ended the dump: it sent more than 10 image files'
        }
        finally { Close-PageServerConnection $session }
        Test-Path $image | Should -BeFalse
        Get-WorkDirectories $image | Should -BeNullOrEmpty
    }
}
