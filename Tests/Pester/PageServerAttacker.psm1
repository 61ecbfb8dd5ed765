# A hostile client of the page server: it speaks the protocol as its documentation describes it (CriuPS.Engine/
# PageServer/FrameType.cs: frames of a little-endian u32 length, then a type byte and the payload), with none of the
# engine's client code, and does what an attacker on the network would: trickle bytes, hold connections open, send
# junk with matching digests, keep sending after the commit, open thousands of files or send a huge one.
# Used by Tests/Pester/PageServerAttacks.Tests.ps1 and bench/Measure-PageServerAttacks.ps1.

$script:Frame = @{ Hello = 1; Welcome = 2; Error = 3; FileBegin = 10; FileData = 11; FileEnd = 12; Commit = 13; Committed = 14; Close = 15; Goodbye = 16 }
$script:Utf8 = [System.Text.UTF8Encoding]::new($false)

# A TCP connection to the server (TLS when -Tls or a client certificate is given; the attacker trusts any server
# certificate). -NoHandshake: only connect, send nothing (an idle connection).
function Connect-PageServer {
    param([Parameter(Mandatory)][int]$Port, [string]$Address = '127.0.0.1', [switch]$Tls,
        [System.Security.Cryptography.X509Certificates.X509Certificate2]$ClientCertificate, [int]$TimeoutSeconds = 30)
    $client = [System.Net.Sockets.TcpClient]::new()
    $client.NoDelay = $true
    $client.ReceiveTimeout = $TimeoutSeconds * 1000
    $client.SendTimeout = $TimeoutSeconds * 1000
    if (-not $client.ConnectAsync($Address, $Port).Wait([timespan]::FromSeconds($TimeoutSeconds))) {
        $client.Dispose()
        throw "no connection to ${Address}:$Port within $TimeoutSeconds s"
    }
    [System.IO.Stream]$stream = $client.GetStream()
    if ($Tls -or $ClientCertificate) {
        $secure = [System.Net.Security.SslStream]::new($stream, $false, { $true })
        $options = [System.Net.Security.SslClientAuthenticationOptions]::new()
        $options.TargetHost = $Address
        if ($ClientCertificate) {
            $options.ClientCertificateContext = [System.Net.Security.SslStreamCertificateContext]::Create($ClientCertificate, $null)
        }
        $secure.AuthenticateAsClient($options)
        $stream = $secure
    }
    [pscustomobject]@{ Client = $client; Stream = $stream }
}

function Close-PageServerConnection($Connection) {
    if ($Connection) { $Connection.Stream.Dispose(); $Connection.Client.Dispose() }
}

function Send-Bytes($Connection, [byte[]]$Bytes) {
    $Connection.Stream.Write($Bytes, 0, $Bytes.Length)
    $Connection.Stream.Flush()
}

# A frame of TYPE whose payload is FIELDS then DATA (kept apart: PowerShell concatenates arrays element by element).
function Send-Frame($Connection, [int]$Type, [byte[]]$Fields = @(), [byte[]]$Data = @()) {
    $frame = [byte[]]::new(5 + $Fields.Length + $Data.Length)
    [System.BitConverter]::GetBytes([uint32](1 + $Fields.Length + $Data.Length)).CopyTo($frame, 0)
    $frame[4] = [byte]$Type
    $Fields.CopyTo($frame, 5)
    $Data.CopyTo($frame, 5 + $Fields.Length)
    Send-Bytes $Connection $frame
}

# The next frame as @{ Type; Payload }, or $null when the server closed the connection.
function Read-Frame($Connection) {
    $header = [byte[]]::new(4)
    if (-not (Read-Exactly $Connection $header)) { return $null }
    $length = [System.BitConverter]::ToUInt32($header, 0)
    $body = [byte[]]::new($length)
    if (-not (Read-Exactly $Connection $body)) { return $null }
    $payload = [byte[]]::new($length - 1)
    [Array]::Copy($body, 1, $payload, 0, $length - 1)
    [pscustomobject]@{ Type = $body[0]; Payload = $payload }
}

function Read-Exactly($Connection, [byte[]]$Buffer) {
    $done = 0
    while ($done -lt $Buffer.Length) {
        $n = $Connection.Stream.Read($Buffer, $done, $Buffer.Length - $done)
        if ($n -eq 0) { return $false }
        $done += $n
    }
    $true
}

# What a frame from the server says, for the caller and for messages: Welcome/Committed PATH, Error CODE TEXT, ...
function Format-Frame($Frame) {
    if ($null -eq $Frame) { return 'closed' }
    $name = ($script:Frame.GetEnumerator() | Where-Object Value -EQ $Frame.Type).Key
    switch ($name) {
        'Welcome' { "Welcome $(Read-String $Frame.Payload 2)" }
        'Committed' { "Committed $(Read-String $Frame.Payload 0)" }
        'Error' { "Error $($Frame.Payload[0]) $(Read-String $Frame.Payload 1)" }
        default { "$name" }
    }
}

function Read-String([byte[]]$Payload, [int]$At) {
    $length = [System.BitConverter]::ToUInt16($Payload, $At)
    $script:Utf8.GetString($Payload, $At + 2, $length)
}

function ConvertTo-FrameString([string]$Text) {
    $bytes = $script:Utf8.GetBytes($Text)
    [byte[]]([System.BitConverter]::GetBytes([uint16]$bytes.Length) + $bytes)
}

# Hello for a dump (purpose 1) or a lazy restore's pages (2), in VERSION of the protocol.
function Send-Hello($Connection, [int]$Version, [int]$Purpose = 1, [string]$ImageId = '') {
    $payload = [byte[]]([byte[]][char[]]'CRPS' + [System.BitConverter]::GetBytes([uint16]$Version) + [byte]$Purpose + (ConvertTo-FrameString $ImageId))
    Send-Frame $Connection $script:Frame.Hello $payload
}

function Send-FileBegin($Connection, [uint32]$Id, [string]$Name) {
    Send-Frame $Connection $script:Frame.FileBegin ([byte[]]([System.BitConverter]::GetBytes($Id) + (ConvertTo-FrameString $Name)))
}

function Send-FileData($Connection, [uint32]$Id, [byte[]]$Data) {
    Send-Frame $Connection $script:Frame.FileData ([System.BitConverter]::GetBytes($Id)) $Data
}

function Send-FileEnd($Connection, [uint32]$Id, [uint64]$Length) {
    Send-Frame $Connection $script:Frame.FileEnd ([byte[]]([System.BitConverter]::GetBytes($Id) + [System.BitConverter]::GetBytes($Length)))
}

function Send-File($Connection, [uint32]$Id, [string]$Name, [byte[]]$Data) {
    Send-FileBegin $Connection $Id $Name
    if ($Data.Length) { Send-FileData $Connection $Id $Data }
    Send-FileEnd $Connection $Id $Data.Length
}

# criups-digests.img for FILES (name => bytes), as a client computes it: the attacker runs the same open code.
function New-DigestManifest([System.Collections.IDictionary]$Files) {
    $engine = [CriuPS.Engine.PageServer.LazyPageServer].Assembly
    $manifest = $engine.GetType('CriuPS.Engine.Images.Digests.DigestManifest')
    $digestType = $engine.GetType('CriuPS.Engine.Images.Digests.FileDigest')
    $list = [System.Activator]::CreateInstance([System.Collections.Generic.List`1].MakeGenericType($digestType))
    $scratch = Join-Path ([System.IO.Path]::GetTempPath()) "criups-attacker-$([guid]::NewGuid())"
    try {
        foreach ($name in $Files.Keys) {
            [System.IO.File]::WriteAllBytes($scratch, [byte[]]$Files[$name])
            $list.Add($manifest.GetMethod('DigestOf').Invoke($null, [object[]]@([string]$scratch, [string]$name)))
        }
    }
    finally { Remove-Item $scratch -ErrorAction Ignore }
    $stream = [System.IO.MemoryStream]::new()
    $null = $manifest.GetMethod('Write').Invoke($null, [object[]]@($stream, 'criups-digests.img', $list))
    $stream.ToArray()
}

# Connects, says Hello for a dump, and returns the connection with the server's answer (Welcome or Error) in Answer.
function Open-DumpSession {
    param([Parameter(Mandatory)][int]$Port, [Parameter(Mandatory)][int]$Version, [switch]$Tls,
        [System.Security.Cryptography.X509Certificates.X509Certificate2]$ClientCertificate)
    $connection = Connect-PageServer -Port $Port -Tls:$Tls -ClientCertificate $ClientCertificate
    Send-Hello $connection $Version
    $connection | Add-Member Answer (Format-Frame (Read-Frame $connection)) -PassThru
}

# The unauthenticated commit: 32 junk bytes as core-1.img, with digests that match, committed, and the session
# closed (-KeepOpen: left open after the commit, in Connection). Returns what the server answered at each step (the
# first Error or the connection closing ends it).
function Invoke-JunkCommit {
    param([Parameter(Mandatory)][int]$Port, [Parameter(Mandatory)][int]$Version, [switch]$Tls,
        [System.Security.Cryptography.X509Certificates.X509Certificate2]$ClientCertificate, [switch]$KeepOpen)
    $junk = [byte[]](1..32 | ForEach-Object { Get-Random -Maximum 256 })
    $steps = [System.Collections.Generic.List[string]]::new()
    $connection = $null
    try {
        $connection = Open-DumpSession -Port $Port -Version $Version -Tls:$Tls -ClientCertificate $ClientCertificate
        $steps.Add($connection.Answer)
        if ($connection.Answer -like 'Welcome*') {
            Send-File $connection 1 'core-1.img' $junk
            Send-File $connection 2 'criups-digests.img' (New-DigestManifest @{ 'core-1.img' = $junk })
            Send-Frame $connection $script:Frame.Commit
            $steps.Add((Format-Frame (Read-Frame $connection)))
            if (-not $KeepOpen -and $steps[-1] -like 'Committed*') {
                Send-Frame $connection $script:Frame.Close
                $steps.Add((Format-Frame (Read-Frame $connection)))
            }
        }
    }
    catch { $steps.Add("failed: $($_.Exception.InnerException.Message ?? $_.Exception.Message)") }
    if (-not $KeepOpen) { Close-PageServerConnection $connection; $connection = $null }
    [pscustomobject]@{ Steps = $steps.ToArray(); Connection = $connection }
}

# After a commit, keeps sending: a new file, and a file under the name of one already committed. Returns what
# each step got (a server that takes them answers nothing until Close).
function Invoke-JunkAfterCommit($Connection) {
    $steps = [System.Collections.Generic.List[string]]::new()
    try {
        Send-File $Connection 100 'added-after-commit.img' ([byte[]](1..64))
        Send-File $Connection 101 'core-1.img' ([byte[]](1..64))
        Send-Frame $Connection $script:Frame.Close
        $steps.Add((Format-Frame (Read-Frame $Connection)))
    }
    catch { $steps.Add("failed: $($_.Exception.InnerException.Message ?? $_.Exception.Message)") }
    $steps.ToArray()
}

# The file bomb: FILES files begun and never ended (each would be an open descriptor), then one file of BYTES
# bytes in 1 MiB frames. Returns how far it got before the server stopped it.
function Invoke-FileBomb {
    param([Parameter(Mandatory)][int]$Port, [Parameter(Mandatory)][int]$Version, [int]$Files = 3000, [long]$Bytes = 1GB,
        [switch]$Tls, [System.Security.Cryptography.X509Certificates.X509Certificate2]$ClientCertificate)
    $opened = 0
    [long]$sent = 0
    $outcome = 'all sent'
    $connection = $null
    try {
        $connection = Open-DumpSession -Port $Port -Version $Version -Tls:$Tls -ClientCertificate $ClientCertificate
        if ($connection.Answer -notlike 'Welcome*') { $outcome = $connection.Answer }
        else {
            for ($i = 1; $i -le $Files; $i++) { Send-FileBegin $connection $i "core-$i.img"; $opened = $i }
            $chunk = [byte[]]::new(1MB)
            Send-FileBegin $connection ($Files + 1) 'pages-1.img'
            while ($sent -lt $Bytes) { Send-FileData $connection ($Files + 1) $chunk; $sent += $chunk.Length }
        }
    }
    catch { $outcome = "stopped: $($_.Exception.InnerException.Message ?? $_.Exception.Message)" }
    $answer = try { if ($connection) { Format-Frame (Read-Frame $connection) } } catch { 'closed' }
    Close-PageServerConnection $connection
    [pscustomobject]@{ FilesOpened = $opened; BytesSent = $sent; Outcome = $outcome; Answer = $answer }
}

# Opens COUNT connections at once that never say anything; returns those established within 3 s (close them with
# Close-PageServerConnection): a server that accepts one connection at a time leaves the rest in its backlog, one
# at its limit closes some.
function Open-IdleConnections([int]$Port, [int]$Count) {
    $attempts = @(for ($i = 0; $i -lt $Count; $i++) {
        $client = [System.Net.Sockets.TcpClient]::new()
        [pscustomobject]@{ Client = $client; Connecting = $client.ConnectAsync('127.0.0.1', $Port) }
    })
    # Some may fail (a server at its limit closes them at once): those are simply not returned.
    try { $null = [System.Threading.Tasks.Task]::WhenAll([System.Threading.Tasks.Task[]]$attempts.Connecting).Wait([timespan]::FromSeconds(3)) } catch { }
    foreach ($attempt in $attempts) {
        if ($attempt.Connecting.IsCompletedSuccessfully) { [pscustomobject]@{ Client = $attempt.Client; Stream = $attempt.Client.GetStream() } }
        else { $attempt.Client.Dispose() }
    }
}

# The slow client, in a thread job: connects and sends the bytes of a Hello one at a time, one every INTERVAL
# seconds, until the server answers or closes. Returns the job; its output is what happened, with the seconds it
# had the server's attention.
function Start-SlowClient {
    param([Parameter(Mandatory)][int]$Port, [Parameter(Mandatory)][int]$Version, [double]$IntervalSeconds = 20, [switch]$Tls)
    $module = $PSCommandPath
    Start-ThreadJob -ArgumentList $module, $Port, $Version, $IntervalSeconds, $Tls.IsPresent -ScriptBlock {
        param($Module, $Port, $Version, $Interval, $Tls)
        Import-Module $Module
        $clock = [Diagnostics.Stopwatch]::StartNew()
        $connection = Connect-PageServer -Port $Port -Tls:$Tls -TimeoutSeconds 600
        try {
            $hello = [byte[]]([byte[]][char[]]'CRPS' + [System.BitConverter]::GetBytes([uint16]$Version) + [byte]1 + [byte[]](0, 0))
            $frame = [byte[]]([System.BitConverter]::GetBytes([uint32](1 + $hello.Length)) + [byte]1 + $hello)
            foreach ($byte in $frame) {
                Send-Bytes $connection ([byte[]]$byte)
                # Readable before the next byte is due: the server answered, or closed the connection.
                if ($connection.Client.Client.Poll([int]($Interval * 1e6), [System.Net.Sockets.SelectMode]::SelectRead)) { break }
            }
            "held the server $([math]::Round($clock.Elapsed.TotalSeconds, 1)) s, then it answered $(Format-Frame (Read-Frame $connection))"
        }
        catch { "dropped after $([math]::Round($clock.Elapsed.TotalSeconds, 1)) s: $($_.Exception.InnerException.Message ?? $_.Exception.Message)" }
        finally { Close-PageServerConnection $connection }
    }
}

Export-ModuleMember -Function *
