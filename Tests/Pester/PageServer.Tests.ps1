# The page server: a checkpoint streamed to it over TCP (TLS with a pinned certificate), a lazy restore served by it,
# a migration between two network namespaces, and what happens when either side goes away.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:LazyMem = Get-TestTarget 'lazymem'
    $script:Module = (Get-Module CriuPS).Path
    $script:Checkpoint = 'CriuPS.Cmdlets.CheckpointProcessCommand'

    function Start-LazyTarget([string]$Name, [int]$MiB = 256) {
        $work = Join-Path $TestDrive $Name
        $log = Join-Path $work 'lazymem.log'
        @{ Id = (Start-TestTarget -Program $LazyMem -Arguments "$MiB", $log -WorkDirectory $work); Log = $log; Work = $work }
    }

    # A page server in a PowerShell of its own (so that it can be killed): writes its port to PORTFILE, and with
    # -DieAfterBytes or -DieAfterPages sends itself SIGNAL (KILL, or STOP: it hangs) once it has received that many
    # bytes, or served that many pages. -DieAt kills it at an engine death point (CRIUPS_DIE_AT), at an exact
    # instant however loaded the machine (the script's own check may come late, after the transfer ended).
    $script:ServerScript = Join-Path $TestDrive 'server.ps1'
    Set-Content $ServerScript @'
param($Module, $ImagePath, $PortFile, [long]$DieAfterBytes, [long]$DieAfterPages, $Signal)
$ErrorActionPreference = 'Stop'
Import-Module $Module
$server = Start-LazyPageServer -ImagePath $ImagePath -Port 0
Set-Content "$PortFile.tmp" $server.Port
Move-Item "$PortFile.tmp" $PortFile
if ($DieAfterBytes -gt 0 -or $DieAfterPages -gt 0) {
    while (($DieAfterBytes -gt 0 -and $server.BytesReceived -lt $DieAfterBytes) -or ($DieAfterPages -gt 0 -and $server.PagesServed -lt $DieAfterPages)) {
        Start-Sleep -Milliseconds 1
    }
    & kill -s $Signal $PID
}
while ($server.State -notin 'Stopped', 'Failed') { Start-Sleep -Milliseconds 50 }
'@

    function Start-ServerProcess([string]$ImagePath, [long]$DieAfterBytes = 0, [long]$DieAfterPages = 0, [string]$Signal = 'KILL', [string]$DieAt = '') {
        $portFile = Join-Path $TestDrive "port-$([guid]::NewGuid())"
        $process = Start-Process "$PSHOME/pwsh" -ArgumentList '-NoProfile', '-NonInteractive', '-File', $ServerScript, $Module, $ImagePath, $portFile, $DieAfterBytes, $DieAfterPages, $Signal -PassThru `
            -Environment @{ CRIUPS_DIE_AT = $DieAt } `
            -RedirectStandardOutput "$portFile.out" -RedirectStandardError "$portFile.err"
        Register-TestProcess $process.Id
        Wait-Until { Test-Path $portFile } 'the page server process to listen' -TimeoutSeconds 60
        [pscustomobject]@{ Process = $process; Port = [int](Get-Content $portFile) }
    }

    # This session's TCP connections to PORT.
    function Get-ConnectionsTo([int]$Port) { @(& ss -Htn "dport = :$Port") }

    function Test-Listening([int]$Port) { [bool](& ss -Hltn "sport = :$Port") }

    function Get-PageServerThreads { @(Get-ChildItem "/proc/$PID/task" | Where-Object { (Get-Content "$($_.FullName)/comm" -ErrorAction Ignore) -in 'criups-pagesrv', 'criups-lazy' }) }
}

Describe 'Start-LazyPageServer, Get-LazyPageServer and Stop-LazyPageServer' {
    AfterEach { Stop-TestProcesses }

    It 'receives a checkpoint into an image directory made like a local one, serves it lazily, and stops by itself' {
        $t = Start-LazyTarget 'receive'
        $image = Join-Path $TestDrive 'received'
        $server = Start-LazyPageServer -ImagePath $image
        $server.Address | Should -Be '127.0.0.1'
        $server.Port | Should -BeGreaterThan 0
        $server.State | Should -Be 'Listening'
        $server.Tls | Should -BeFalse
        Get-LazyPageServer | Should -Contain $server
        Test-Listening $server.Port | Should -BeTrue

        $sent = Checkpoint-Process -Id $t.Id -PageServer "127.0.0.1:$($server.Port)"
        $sent.PageServer | Should -Be "127.0.0.1:$($server.Port)"
        $sent.Path | Should -Be $image
        $sent.RootProcessId | Should -Be $t.Id
        $sent.BytesSent | Should -BeGreaterThan 256MB
        Test-Path $sent.LogPath | Should -BeTrue -Because 'dump.log stays on the source'
        Wait-Until { -not (Test-ProcessAlive $t.Id) } 'the checkpointed process to end'
        Wait-Until { $server.State -eq 'Listening' } 'the server to finish receiving'
        $server.ImagesReceived | Should -Be 1
        $server.PagesReceived | Should -Be $sent.Pages
        Get-ModeBits $image | Should -Be '700'
        foreach ($file in Get-ChildItem $image) { Get-ModeBits $file.FullName | Should -Be '600' -Because $file.Name }
        (Get-CheckpointImage $image).Pages | Should -Be $sent.Pages
        Test-Path (Join-Path $image 'dump.log') | Should -BeFalse

        $restored = Restore-Process -ImagePath $image -LazyPages -PageServer "127.0.0.1:$($server.Port)"
        Register-TestProcess $restored.Id
        $restored.LazyRestore.Source | Should -Be "page server 127.0.0.1:$($server.Port)"
        ($restored | Wait-LazyRestore -Timeout 120).State | Should -Be 'Completed'
        Invoke-SelfCheck $t.Id $t.Log 'USR1' | Should -Be "OK pid=$($t.Id)"
        Wait-Until { $server.State -eq 'Stopped' } 'the server to stop once the restore had every page'
        $server.PagesServed | Should -Be $restored.LazyRestore.PagesTotal
        Test-Listening $server.Port | Should -BeFalse
        Wait-Until { (Get-PageServerThreads).Count -eq 0 } 'the server and transfer threads to end'
    }

    It 'stops on request, from the pipeline, and refuses a dump into an image directory that is not empty' {
        $image = Join-Path $TestDrive 'occupied'
        New-Item -ItemType Directory $image | Out-Null
        Set-Content (Join-Path $image 'something') 'not an image'
        $server = Start-LazyPageServer -ImagePath $image
        $t = Start-LazyTarget 'occupied' -MiB 1
        Checkpoint-Process -Id $t.Id -PageServer "127.0.0.1:$($server.Port)" -ErrorVariable failed -ErrorAction SilentlyContinue
        $failed[0].FullyQualifiedErrorId | Should -Be "PageServerRefused,$Checkpoint"
        $failed[0].Exception.Message | Should -Match 'not empty'
        Invoke-SelfCheck $t.Id $t.Log 'USR1' | Should -Be "OK pid=$($t.Id)"

        $server | Stop-LazyPageServer -PassThru | Should -Be $server
        $server.State | Should -Be 'Stopped'
        Test-Listening $server.Port | Should -BeFalse
        Get-LazyPageServer -State Stopped | Should -Contain $server
        Wait-Until { (Get-PageServerThreads).Count -eq 0 } 'the server thread to end'
    }

    It 'refuses an address that is in use, with an error record' {
        $first = Start-LazyPageServer -ImagePath (Join-Path $TestDrive 'port-a')
        try {
            Start-LazyPageServer -ImagePath (Join-Path $TestDrive 'port-b') -Port $first.Port -ErrorVariable failed -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $failed[0].FullyQualifiedErrorId | Should -Be 'PageServerUnavailable,CriuPS.Cmdlets.StartLazyPageServerCommand'
            $failed[0].CategoryInfo.Category | Should -Be 'ConnectionError'
        }
        finally { $first | Stop-LazyPageServer }
    }
}

Describe 'TLS' {
    AfterEach { Stop-TestProcesses }

    It 'refuses a server certificate that is not trusted (<How>): nothing is sent, the process runs on' -ForEach @(
        @{ How = 'not in the system store'; Trust = @{ UseTls = $true } }
        @{ How = 'another pinned certificate'; Trust = 'other' }
        @{ How = 'another thumbprint'; Trust = @{ PageServerThumbprint = '00112233445566778899AABBCCDDEEFF00112233' } }
    ) {
        $mine = New-TestCertificate 'criups-tls-server' $TestDrive
        $image = Join-Path $TestDrive 'tls-refused'
        $server = Start-LazyPageServer -ImagePath $image -CertificatePath $mine.Path -KeyPath $mine.KeyPath
        try {
            $server.Tls | Should -BeTrue
            $server.CertificateThumbprint | Should -Be $mine.Certificate.Thumbprint
            $trust = if ($Trust -eq 'other') { @{ PageServerCertificate = (New-TestCertificate 'criups-tls-other' $TestDrive).Certificate } } else { $Trust }
            $t = Start-LazyTarget 'tls' -MiB 8
            Checkpoint-Process -Id $t.Id -PageServer "127.0.0.1:$($server.Port)" @trust -ErrorVariable failed -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $failed.Count | Should -Be 1
            $failed[0].FullyQualifiedErrorId | Should -Be "PageServerUntrusted,$Checkpoint"
            $failed[0].CategoryInfo.Category | Should -Be 'SecurityError'
            $failed[0].Exception.Message | Should -Match "is not trusted: it presented CN=criups-tls-server, SHA-1 thumbprint $($mine.Certificate.Thumbprint)"
            $failed[0].ErrorDetails.RecommendedAction | Should -Match '-PageServerCertificate'
            Invoke-SelfCheck $t.Id $t.Log 'USR1' | Should -Be "OK pid=$($t.Id)"
            $server.ImagesReceived | Should -Be 0
            @(Get-ChildItem $TestDrive -Force -Filter 'tls-refused*') + @(Get-ChildItem $TestDrive -Force -Filter '.tls-refused*') | Should -BeNullOrEmpty
        }
        finally { $server | Stop-LazyPageServer }
    }

    It 'takes a checkpoint over TLS from a client without a certificate when it authenticates none (on the loopback)' {
        $mine = New-TestCertificate 'criups-tls-only' $TestDrive
        $image = Join-Path $TestDrive 'tls-only-image'
        $server = Start-LazyPageServer -ImagePath $image -CertificatePath $mine.Path -KeyPath $mine.KeyPath
        try {
            $server.AuthenticatesClients | Should -BeFalse
            $t = Start-LazyTarget 'tls-only' -MiB 8
            $sent = Checkpoint-Process -Id $t.Id -PageServer "127.0.0.1:$($server.Port)" -PageServerThumbprint $mine.Certificate.Thumbprint
            $sent.Tls | Should -BeTrue
            $server.ImagesReceived | Should -Be 1
            (Get-CheckpointImage $image).Pages | Should -Be $sent.Pages
        }
        finally { $server | Stop-LazyPageServer }
    }

    It 'tells a client without TLS that the server expects it' {
        $mine = New-TestCertificate 'criups-tls-plain' $TestDrive
        $server = Start-LazyPageServer -ImagePath (Join-Path $TestDrive 'tls-plain') -Certificate (
            [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($mine.Path, $mine.KeyPath))
        try {
            $t = Start-LazyTarget 'tls-plain' -MiB 1
            Checkpoint-Process -Id $t.Id -PageServer "127.0.0.1:$($server.Port)" -ErrorVariable failed -ErrorAction SilentlyContinue
            $failed[0].FullyQualifiedErrorId | Should -Be "PageServerUnavailable,$Checkpoint"
            $failed[0].ErrorDetails.RecommendedAction | Should -Match '-UseTls'
            Test-ProcessAlive $t.Id | Should -BeTrue
        }
        finally { $server | Stop-LazyPageServer }
    }
}

Describe 'When the other side goes away' {
    AfterEach { Stop-TestProcesses }

    It 'leaves the source process running as before and no image when the server dies mid-stream' {
        $t = Start-LazyTarget 'mid-stream'
        $image = Join-Path $TestDrive 'mid-stream-image'
        $server = Start-ServerProcess $image -DieAfterBytes 64MB
        Checkpoint-Process -Id $t.Id -PageServer "127.0.0.1:$($server.Port)" -ErrorVariable failed -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $failed.Count | Should -Be 1
        $failed[0].FullyQualifiedErrorId | Should -Be "PageServerUnavailable,$Checkpoint"
        $failed[0].Exception.Message | Should -Match "connection to the page server 127.0.0.1:$($server.Port) was lost"
        # The checkpoint may see the connection drop before this PowerShell has reaped the dead server (as the lazy
        # restore's case below).
        Wait-Until { $server.Process.HasExited } 'the killed page server to be reaped' -TimeoutSeconds 10
        Invoke-SelfCheck $t.Id $t.Log 'USR1' | Should -Be "OK pid=$($t.Id)"
        Invoke-SelfCheck $t.Id $t.Log 'USR2' | Should -Match '^ALIVE'
        Test-Path $image | Should -BeFalse
        # What the killed server had received is not an image; the next server for that path sweeps it away.
        @(Get-ChildItem $TestDrive -Force -Filter '.mid-stream-image.criups-*') | Should -Not -BeNullOrEmpty
        Start-LazyPageServer -ImagePath $image | Stop-LazyPageServer
        @(Get-ChildItem $TestDrive -Force -Filter '.mid-stream-image.criups-*') | Should -BeNullOrEmpty
    }

    It 'tells the client why when it cannot store the checkpoint (a full disk): the process runs on, nothing is kept, and the server goes on listening' {
        # A 16 MiB file system for a 64 MiB process: the pages file fills it while the client is still streaming.
        $small = Join-Path $TestDrive 'small-disk'
        New-Item -ItemType Directory $small | Out-Null
        & mount -t tmpfs -o size=16m criups-test $small
        try {
            $t = Start-LazyTarget 'full-disk' -MiB 64
            $server = Start-LazyPageServer -ImagePath (Join-Path $small 'image')
            Checkpoint-Process -Id $t.Id -PageServer "127.0.0.1:$($server.Port)" -ErrorVariable failed -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $failed.Count | Should -Be 1
            $failed[0].FullyQualifiedErrorId | Should -Be "PageServerRefused,$Checkpoint" -Because 'the server says why instead of closing the connection without a word'
            $failed[0].Exception.Message | Should -Match "^The page server 127\.0\.0\.1:$($server.Port) refused: this server ended the dump: it could not store pages-\d+\.img in $([regex]::Escape((Join-Path $small 'image'))): No space left on device"
            Wait-Until { $server.Error } 'the server to record why it ended the session'
            $server.Error.Message | Should -Match 'could not store pages-\d+\.img .*No space left on device.*Nothing it sent was kept'
            $server.State | Should -Be 'Listening'
            Invoke-SelfCheck $t.Id $t.Log 'USR1' | Should -Be "OK pid=$($t.Id)"
            Wait-Until { $server.Connections -eq 0 } 'the client''s connection to end'
            @(Get-ChildItem $small -Force) | Should -BeNullOrEmpty -Because 'what arrived is removed'
            $server | Stop-LazyPageServer
        }
        finally { & umount $small }
    }

    It 'stops a checkpoint at once on Ctrl+C while the page server does not answer, and releases the process unharmed' {
        $t = Start-LazyTarget 'hung'
        $image = Join-Path $TestDrive 'hung-image'
        # The server stops (SIGSTOP) after 16 MiB: the dump's sends block once the socket buffers are full.
        $server = Start-ServerProcess $image -DieAfterBytes 16MB -Signal STOP
        $shell = [powershell]::Create()
        $null = $shell.AddScript("Import-Module '$Module'; Checkpoint-Process -Id $($t.Id) -PageServer '127.0.0.1:$($server.Port)'")
        $running = $shell.BeginInvoke()
        try {
            Wait-Until { (Get-Content "/proc/$($server.Process.Id)/stat" -Raw).Split(') ')[1][0] -eq 'T' } 'the page server to hang' -TimeoutSeconds 60
            # Blocked in a send: the connection's send queue is full and stays so.
            $queued = { [long]((@(Get-ConnectionsTo $server.Port)[0] -split '\s+')[2]) }
            Wait-Until { $before = & $queued; Start-Sleep -Milliseconds 500; $before -gt 0 -and (& $queued) -eq $before } 'the checkpoint to wait on the page server'
            $clock = [Diagnostics.Stopwatch]::StartNew()
            $shell.Stop()
            $clock.Elapsed.TotalSeconds | Should -BeLessThan 10 -Because 'the connection is broken off, not waited on until it times out (30 s)'
            $running.IsCompleted | Should -BeTrue
        }
        finally { $shell.Dispose() }
        (Get-Content "/proc/$($t.Id)/status" | Select-String '^TracerPid:').Line | Should -Match '\s0$'
        Invoke-SelfCheck $t.Id $t.Log 'USR1' | Should -Be "OK pid=$($t.Id)"
        Test-Path $image | Should -BeFalse
    }

    It 'kills the restored process at once when the session serving it ends while the page server does not answer' {
        $t = Start-LazyTarget 'session-ends'
        $image = Join-Path $TestDrive 'session-ends-image'
        Checkpoint-Process -Id $t.Id -ImagePath $image | Out-Null
        Wait-Until { -not (Test-ProcessAlive $t.Id) } 'the checkpointed process to end'
        $server = Start-ServerProcess $image -DieAfterPages 1024 -Signal STOP
        $status = Join-Path $t.Work 'status'
        $go = Join-Path $t.Work 'go'
        $script = Join-Path $t.Work 'restore.ps1'
        # The child session restores lazily from the server, says so, and exits when told to.
        Set-Content $script @'
param($Module, $Image, $Server, $Status, $Go)
Import-Module $Module
$restored = Restore-Process -ImagePath $Image -LazyPages -PageServer $Server -Detach
"$($restored.Id)" | Set-Content $Status
while (-not (Test-Path $Go)) { Start-Sleep -Milliseconds 10 }
'@
        $child = Start-Process "$PSHOME/pwsh" -ArgumentList '-NoProfile', '-NonInteractive', '-File', $script, $Module, $image, "127.0.0.1:$($server.Port)", $status, $go -PassThru `
            -RedirectStandardOutput (Join-Path $t.Work 'out.txt') -RedirectStandardError (Join-Path $t.Work 'err.txt')
        Register-TestProcess $child.Id
        Wait-Until { (Test-Path $status) -and (Get-Content $status) } 'the child session to restore the process' -TimeoutSeconds 60
        [int](Get-Content $status) | Should -Be $t.Id
        Register-TestProcess $t.Id
        Wait-Until { (Get-Content "/proc/$($server.Process.Id)/stat" -Raw).Split(') ')[1][0] -eq 'T' } 'the page server to hang'
        Test-ProcessAlive $t.Id | Should -BeTrue -Because 'it runs while a page request waits on the server'
        $clock = [Diagnostics.Stopwatch]::StartNew()
        Set-Content $go ''
        Wait-Until { -not (Test-ProcessAlive $t.Id) } 'the restored process to be killed' -TimeoutSeconds 30
        $clock.Elapsed.TotalSeconds | Should -BeLessThan 5 -Because 'the waiting page request is broken off, not waited on until it times out'
        Wait-Until { $child.HasExited } 'the child session to end'
        Join-Path $image 'restore.log' | Should -FileContentMatch 'Error: lazy restore: .*The PowerShell session that served the lazy restore ended'
    }

    It 'kills the restored process, with a clear error, when the page server is killed during a lazy restore' {
        $t = Start-LazyTarget 'server-killed'
        $image = Join-Path $TestDrive 'server-killed-image'
        Checkpoint-Process -Id $t.Id -ImagePath $image | Out-Null
        Wait-Until { -not (Test-ProcessAlive $t.Id) } 'the checkpointed process to end'
        $files = @(Get-ChildItem $image -Force).Name
        # Killed early in the transfer (at the fourth answer to a page request), however fast the transfer is.
        $server = Start-ServerProcess $image -DieAt 'serve:4'
        $restored = Restore-Process -ImagePath $image -LazyPages -PageServer "127.0.0.1:$($server.Port)"
        Register-TestProcess $restored.Id
        $lazy = $restored | Wait-LazyRestore -Timeout 60 -ErrorVariable failed -ErrorAction SilentlyContinue
        # The restore may see the connection drop before this PowerShell has reaped the dead server.
        Wait-Until { $server.Process.HasExited } 'the killed page server to be reaped' -TimeoutSeconds 10
        $lazy.State | Should -Be 'Failed'
        $lazy.PagesDone | Should -BeLessThan $lazy.PagesTotal
        $failed.Count | Should -Be 1
        $failed[0].FullyQualifiedErrorId | Should -Be 'PageServerUnavailable,CriuPS.Cmdlets.WaitLazyRestoreCommand'
        $failed[0].TargetObject | Should -Be $t.Id
        $failed[0].Exception.Message | Should -Match "the process was killed rather than left to run without its memory: The connection to the page server 127.0.0.1:$($server.Port) was lost"
        $lazy.ErrorRecord.FullyQualifiedErrorId | Should -Be 'PageServerUnavailable'
        Wait-Until { -not (Test-ProcessAlive $t.Id) } 'the restored process to be gone'
        Wait-Until { $null -ne $restored.ExitStatus } 'the restored process to be reaped'
        $restored.ExitStatus | Should -Be (128 + 9)
        Join-Path $image 'restore.log' | Should -FileContentMatch 'Error: lazy restore: .*was lost'
        # Nothing is left: no listener, no connection, no thread, and the image as it was but for the restore's log.
        Test-Listening $server.Port | Should -BeFalse
        Get-ConnectionsTo $server.Port | Should -BeNullOrEmpty
        Wait-Until { (Get-PageServerThreads).Count -eq 0 } 'the transfer thread to end'
        @(Get-ChildItem $image -Force).Name | Sort-Object | Should -Be (@($files) + 'restore.log' | Sort-Object)
        @(Get-ChildItem $TestDrive -Force -Filter '.server-killed-image*') | Should -BeNullOrEmpty
    }
}

Describe 'Migration between two network namespaces, over mutual TLS' {
    BeforeAll {
        $script:SourceNs = 'criups-lazy-src'
        $script:DestinationNs = 'criups-lazy-dst'
        $script:SourceIp = '10.199.77.1'
        $script:DestinationIp = '10.199.77.2'
        function Invoke-Ip {
            & ip @args
            if ($LASTEXITCODE -ne 0) { throw "ip $args failed (exit code $LASTEXITCODE)" }
        }
        foreach ($ns in $SourceNs, $DestinationNs) {
            if ((& ip netns list) -match "^$ns\b") { Invoke-Ip netns delete $ns }
            Invoke-Ip netns add $ns
            Invoke-Ip -n $ns link set lo up
        }
        # The veth pair is made inside the namespaces: deleting them deletes it.
        Invoke-Ip link add criups-lzs netns $SourceNs type veth peer name criups-lzd netns $DestinationNs
        Invoke-Ip -n $SourceNs addr add "$SourceIp/24" dev criups-lzs
        Invoke-Ip -n $DestinationNs addr add "$DestinationIp/24" dev criups-lzd
        Invoke-Ip -n $SourceNs link set criups-lzs up
        Invoke-Ip -n $DestinationNs link set criups-lzd up
    }

    AfterAll {
        Stop-TestProcesses
        foreach ($ns in $SourceNs, $DestinationNs) { & ip netns delete $ns 2>$null }
    }

    It 'streams the checkpoint from one namespace to a page server in the other and restores it there lazily' {
        $certificate = New-TestCertificate 'criups-lazy-dst' $TestDrive -IpAddress $DestinationIp
        $client = New-TestCertificate 'criups-lazy-client' $TestDrive
        $work = Join-Path $TestDrive 'migration'
        New-Item -ItemType Directory $work | Out-Null
        $log = Join-Path $work 'lazymem.log'
        $image = Join-Path $TestDrive 'migrated'
        $status = Join-Path $work 'status'

        # The destination: a page server that receives the checkpoint, then restores it lazily from itself.
        $destination = Join-Path $work 'destination.ps1'
        Set-Content $destination @'
param($Module, $Image, $Address, $Certificate, $Key, $Status, $ClientPem, $ClientKey)
$ErrorActionPreference = 'Stop'
Import-Module $Module
$client = [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($ClientPem, $ClientKey)
# Not on the loopback: the server authenticates its clients, which present $client.
$server = Start-LazyPageServer -ImagePath $Image -Address $Address -CertificatePath $Certificate -KeyPath $Key -ClientThumbprint $client.Thumbprint
"PORT $($server.Port)" | Add-Content $Status
$deadline = (Get-Date).AddMinutes(3)
while ($server.ImagesReceived -lt 1) { if ((Get-Date) -gt $deadline) { throw 'no checkpoint arrived' }; Start-Sleep -Milliseconds 20 }
$trusted = [System.Security.Cryptography.X509Certificates.X509CertificateLoader]::LoadCertificateFromFile($Certificate)
$restored = Restore-Process -ImagePath $Image -LazyPages -PageServer "$($Address):$($server.Port)" -PageServerCertificate $trusted -ClientCertificate $client -Detach
"RESTORED $($restored.Id) $((Get-Item /proc/self/ns/net).LinkTarget)" | Add-Content $Status
$lazy = $restored | Wait-LazyRestore -Timeout 180
"LAZY $($lazy.State) $($lazy.PagesDone) $($lazy.PagesTotal)" | Add-Content $Status
while ($server.State -notin 'Stopped', 'Failed') { Start-Sleep -Milliseconds 20 }
"SERVER $($server.State) $($server.PagesReceived) $($server.PagesServed)" | Add-Content $Status
'@
        # The source: checkpoints the process, which lives in the source namespace, to the destination.
        $source = Join-Path $work 'source.ps1'
        Set-Content $source @'
param($Module, $Id, $Server, $Thumbprint, $Result, $ClientPem, $ClientKey)
$ErrorActionPreference = 'Stop'
Import-Module $Module
$client = [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($ClientPem, $ClientKey)
Checkpoint-Process -Id $Id -PageServer $Server -PageServerThumbprint $Thumbprint -ClientCertificate $client | ConvertTo-Json | Set-Content $Result
'@
        $launch = Get-TestTarget 'launch'
        # nsenter --net changes the network namespace only; ip netns exec would make a mount namespace too, another
        # world than the checkpointing PowerShell's, which the checkpoint refuses.
        & nsenter "--net=/run/netns/$SourceNs" $launch $work $LazyMem 256 $log
        Wait-Until { Test-Path (Join-Path $work 'ready') } 'the process to start in the source namespace'
        $target = [int](Get-Content (Join-Path $work 'ready'))
        Register-TestProcess $target
        (Get-Item "/proc/$target/ns/net").LinkTarget | Should -Be (& ip netns exec $SourceNs readlink /proc/self/ns/net)

        # The destination too: ip netns exec would remount /sys, hiding the cgroup hierarchies the process goes back into.
        $receiver = Start-Process nsenter -ArgumentList "--net=/run/netns/$DestinationNs", "$PSHOME/pwsh", '-NoProfile', '-NonInteractive', '-File', $destination,
            $Module, $image, $DestinationIp, $certificate.Path, $certificate.KeyPath, $status, $client.Path, $client.KeyPath -PassThru `
            -RedirectStandardOutput (Join-Path $work 'destination.out') -RedirectStandardError (Join-Path $work 'destination.err')
        try {
            Wait-Until { (Get-Content $status -ErrorAction Ignore) -match '^PORT' } 'the destination page server to listen' -TimeoutSeconds 60
            $port = [int]((@(Get-Content $status) -match '^PORT')[0] -split ' ')[1]
            $result = Join-Path $work 'sent.json'
            & nsenter "--net=/run/netns/$SourceNs" "$PSHOME/pwsh" -NoProfile -NonInteractive -File $source $Module $target "$($DestinationIp):$port" $certificate.Certificate.Thumbprint $result $client.Path $client.KeyPath
            $LASTEXITCODE | Should -Be 0 -Because (Get-Content (Join-Path $work 'destination.err') -Raw)
            $sent = Get-Content $result -Raw | ConvertFrom-Json
            $sent.Tls | Should -BeTrue
            $sent.Path | Should -Be $image
            Test-Path $sent.LogPath | Should -BeTrue

            Wait-Until { (Get-Content $status) -match '^SERVER' } 'the destination to restore lazily and its server to stop' -TimeoutSeconds 240
            $lines = @(Get-Content $status)
            $restoredLine = ($lines -match '^RESTORED')[0] -split ' '
            [int]$restoredLine[1] | Should -Be $target
            $restoredLine[2] | Should -Be (& ip netns exec $DestinationNs readlink /proc/self/ns/net)
            (Get-Item "/proc/$target/ns/net").LinkTarget | Should -Be $restoredLine[2] -Because 'the process now lives in the destination namespace'
            $lazy = ($lines -match '^LAZY')[0] -split ' '
            $lazy[1] | Should -Be 'Completed'
            $lazy[2] | Should -Be $lazy[3]
            $server = ($lines -match '^SERVER')[0] -split ' '
            $server[1] | Should -Be 'Stopped'
            [long]$server[2] | Should -Be $sent.Pages
            [long]$server[3] | Should -Be ([long]$lazy[3])

            Invoke-SelfCheck $target $log 'USR1' | Should -Be "OK pid=$target"
        }
        finally {
            if (-not $receiver.HasExited) { $receiver.Kill($true) }
        }
    }
}
