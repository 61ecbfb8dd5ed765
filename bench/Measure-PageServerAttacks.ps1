#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Runs the attacks of "the page server trusts no one" against a page server in a PowerShell of its own, and
    measures what each costs a legitimate checkpoint made during it, and the server's descriptors and memory.
.DESCRIPTION
    Each attack gets a fresh server (Start-LazyPageServer in its own pwsh, default deadlines and limits) and a
    fresh 64 MiB target (Tests/Targets/lazymem.c). The attacks (Tests/Pester/PageServerAttacker.psm1):
      slow-client      one byte of a Hello every 20 s
      silent           one connection that says nothing
      idle-200         200 connections that say nothing
      junk-commit      32 junk bytes as core-1.img with matching digests, committed, without credentials
      junk-after       the same, then more files after the commit (a new one, and one under a committed name)
      file-bomb        3,000 files begun and never ended, then a 1 GiB file
      big-file         one 1 GiB file, to a server whose -MaxImageSize is 256 MiB (the 64 MiB checkpoint and a
                       margin; the default, this machine's memory and swap plus a quarter, allows 1 GiB on most)
    For each: the attack's outcome; the legitimate Checkpoint-Process -PageServer made while the attack holds on
    (its time, or its error); and the serving PowerShell's descriptors and resident memory before, at the peak of
    the attack, and 5 s after it ended.
    -MutualTls: the server has a certificate and trusts one client certificate (the legitimate client's); the
    attacker has none (it does TLS, trusting anything, without a client certificate). Without it, plain TCP on the
    loopback, which a server without client authentication may only listen on.
#>
[CmdletBinding()]
param(
    [ValidateSet('slow-client', 'silent', 'idle-200', 'junk-commit', 'junk-after', 'file-bomb', 'big-file')]
    [string[]]$Attack = @('slow-client', 'silent', 'idle-200', 'junk-commit', 'junk-after', 'file-bomb', 'big-file'),
    [switch]$MutualTls,
    [int]$ProtocolVersion = 3
)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$root = Split-Path $PSScriptRoot
$module = Join-Path $root 'out/CriuPS/CriuPS.psd1'
Import-Module $module -Force
Import-Module (Join-Path $root 'Tests/Pester/TestHelpers.psm1') -Force
Import-Module (Join-Path $root 'Tests/Pester/PageServerAttacker.psm1') -Force
$work = Join-Path ([IO.Path]::GetTempPath()) "criups-attacks-$PID"
New-Item -ItemType Directory -Force $work | Out-Null
$lazymem = Get-TestTarget 'lazymem'

$serverCertificate = if ($MutualTls) { New-TestCertificate 'attacks-server' $work }
$clientCertificate = if ($MutualTls) { New-TestCertificate 'attacks-client' $work }
$clientIdentity = if ($MutualTls) { [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($clientCertificate.Path, $clientCertificate.KeyPath) }
$serverScript = Join-Path $work 'server.ps1'
Set-Content $serverScript @'
param($Module, $ImagePath, $PortFile, [long]$MaxImageSize, $Certificate, $Key, $ClientThumbprint)
$ErrorActionPreference = 'Stop'
Import-Module $Module
$tls = if ($Certificate) { @{ CertificatePath = $Certificate; KeyPath = $Key; ClientThumbprint = $ClientThumbprint } } else { @{} }
$limit = if ($MaxImageSize) { @{ MaxImageSize = $MaxImageSize } } else { @{} }
$server = Start-LazyPageServer -ImagePath $ImagePath -Port 0 @tls @limit
Set-Content "$PortFile.tmp" $server.Port
Move-Item "$PortFile.tmp" $PortFile
while ($server.State -notin 'Stopped', 'Failed') { Start-Sleep -Milliseconds 100 }
'@

function Start-Server([string]$Name, [long]$MaxImageSize = 0) {
    $portFile = Join-Path $work "$Name.port"
    $arguments = @('-NoProfile', '-NonInteractive', '-File', $serverScript, $module, (Join-Path $work "$Name-image"), $portFile, $MaxImageSize)
    if ($MutualTls) { $arguments += $serverCertificate.Path, $serverCertificate.KeyPath, $clientCertificate.Certificate.Thumbprint }
    $process = Start-Process "$PSHOME/pwsh" -ArgumentList $arguments -PassThru -RedirectStandardOutput "$portFile.out" -RedirectStandardError "$portFile.err"
    Register-TestProcess $process.Id
    Wait-Until { Test-Path $portFile } 'the page server to listen' -TimeoutSeconds 60
    Start-Sleep -Seconds 2 # let it settle before the first reading
    [pscustomobject]@{ Process = $process; Port = [int](Get-Content $portFile); Image = Join-Path $work "$Name-image" }
}

# Descriptors and resident memory (MiB) of a process.
function Get-Footprint([int]$Id) {
    $rss = (Get-Content "/proc/$Id/status" | Select-String '^VmRSS:\s+(\d+)').Matches[0].Groups[1].Value
    [pscustomobject]@{ Fds = @(Get-ChildItem "/proc/$Id/fd").Count; RssMiB = [math]::Round([long]$rss / 1024, 0) }
}

# A legitimate checkpoint of a fresh 64 MiB process to the server: seconds, and the outcome.
function Invoke-LegitimateCheckpoint($Server, [string]$Name) {
    $target = Start-TestTarget -Program $lazymem -Arguments '64', (Join-Path $work "$Name.log") -WorkDirectory (Join-Path $work "$Name-target")
    $trust = if ($MutualTls) { @{ PageServerThumbprint = $serverCertificate.Certificate.Thumbprint; ClientCertificate = $clientIdentity } } else { @{} }
    $clock = [Diagnostics.Stopwatch]::StartNew()
    $sent = Checkpoint-Process -Id $target -PageServer "127.0.0.1:$($Server.Port)" @trust -ErrorVariable failed -ErrorAction SilentlyContinue
    $seconds = [math]::Round($clock.Elapsed.TotalSeconds, 2)
    $outcome = if ($sent) { "committed $($sent.Pages) pages" } else { "$($failed[0].FullyQualifiedErrorId.Split(',')[0]): $($failed[0].Exception.Message)" }
    [pscustomobject]@{ Seconds = $seconds; Outcome = $outcome }
}

$attackOptions = @{ Version = $ProtocolVersion; Tls = [bool]$MutualTls }
$results = foreach ($name in $Attack) {
    Write-Host "== $name"
    $server = Start-Server $name -MaxImageSize ($name -eq 'big-file' ? 256MB : 0)
    $before = Get-Footprint $server.Process.Id
    $peak = $before
    $attackOutcome = ''
    $legit = $null
    $held = @()
    try {
        switch ($name) {
            'slow-client' {
                $job = Start-SlowClient -Port $server.Port -Version $ProtocolVersion -IntervalSeconds 20 -Tls:$MutualTls
                Start-Sleep -Seconds 1
                $legit = Invoke-LegitimateCheckpoint $server $name
                $peak = Get-Footprint $server.Process.Id
                # It notices being cut off at its next byte (20 s apart), or holds on: 60 s tell which.
                $attackOutcome = if ($job | Wait-Job -Timeout 60) { $job | Receive-Job } else { 'still holding its connection 60 s after the checkpoint' }
                $job | Remove-Job -Force
            }
            'silent' {
                $held = @(Connect-PageServer -Port $server.Port)
                $clock = [Diagnostics.Stopwatch]::StartNew()
                $legit = Invoke-LegitimateCheckpoint $server $name
                $peak = Get-Footprint $server.Process.Id
                $answer = try { Format-Frame (Read-Frame $held[0]) } catch { 'reset' }
                $attackOutcome = "the server ended the silent connection after $([math]::Round($clock.Elapsed.TotalSeconds, 1)) s ($answer)"
            }
            'idle-200' {
                $held = Open-IdleConnections -Port $server.Port -Count 200
                $peak = Get-Footprint $server.Process.Id
                $legit = Invoke-LegitimateCheckpoint $server $name
                $open = { @(& ss -Htn "sport = :$($server.Port)" | Where-Object { $_ -match '^ESTAB' }).Count }
                $afterCheckpoint = & $open
                $clock = [Diagnostics.Stopwatch]::StartNew()
                while ((& $open) -gt 0 -and $clock.Elapsed.TotalSeconds -lt 60) { Start-Sleep -Milliseconds 200 }
                $attackOutcome = "$($held.Count) of 200 idle connections established; the server held $afterCheckpoint of them after the checkpoint, and $(& $open) $([math]::Round($clock.Elapsed.TotalSeconds, 1)) s later"
            }
            'junk-commit' {
                $junk = Invoke-JunkCommit -Port $server.Port @attackOptions
                $attackOutcome = "server answered: $($junk.Steps -join ' / ')"
                $peak = Get-Footprint $server.Process.Id
                $legit = Invoke-LegitimateCheckpoint $server $name
            }
            'junk-after' {
                $junk = Invoke-JunkCommit -Port $server.Port @attackOptions -KeepOpen
                $held = @($junk.Connection)
                $after = if ($junk.Steps[-1] -like 'Committed*') { Invoke-JunkAfterCommit $junk.Connection } else { 'no commit to add to' }
                $files = if (Test-Path $server.Image) { (Get-ChildItem $server.Image -Force).Name -join ', ' } else { 'no image directory' }
                $attackOutcome = "commit: $($junk.Steps -join ' / '); after it: $($after -join ' / '); image holds: $files"
                $peak = Get-Footprint $server.Process.Id
                $legit = Invoke-LegitimateCheckpoint $server $name
            }
            { $_ -in 'file-bomb', 'big-file' } {
                $files = $name -eq 'file-bomb' ? 3000 : 0
                $bomb = Start-ThreadJob -ArgumentList (Join-Path $root 'Tests/Pester/PageServerAttacker.psm1'), $module, $server.Port, $ProtocolVersion, $MutualTls.IsPresent, $files -ScriptBlock {
                    param($Attacker, $Module, $Port, $Version, $Tls, $Files)
                    Import-Module $Module; Import-Module $Attacker
                    Invoke-FileBomb -Port $Port -Version $Version -Files $Files -Bytes 1GB -Tls:$Tls
                }
                while ($bomb.State -in 'NotStarted', 'Running') {
                    $now = Get-Footprint $server.Process.Id
                    if ($now.Fds -gt $peak.Fds -or $now.RssMiB -gt $peak.RssMiB) { $peak = [pscustomobject]@{ Fds = [math]::Max($now.Fds, $peak.Fds); RssMiB = [math]::Max($now.RssMiB, $peak.RssMiB) } }
                    Start-Sleep -Milliseconds 200
                }
                $r = $bomb | Receive-Job -Wait -AutoRemoveJob
                $attackOutcome = "$($r.FilesOpened) files opened, $([math]::Round($r.BytesSent / 1MB)) MiB sent: $($r.Outcome); server: $($r.Answer)"
                $legit = Invoke-LegitimateCheckpoint $server $name
            }
        }
    }
    finally {
        foreach ($connection in $held) { Close-PageServerConnection $connection }
    }
    Start-Sleep -Seconds 5
    $afterwards = Get-Footprint $server.Process.Id
    Stop-TestProcesses -Also $server.Process.Id
    [pscustomobject]@{
        Attack = $name; AttackOutcome = $attackOutcome
        CheckpointSeconds = $legit.Seconds; Checkpoint = $legit.Outcome
        FdsBefore = $before.Fds; FdsPeak = $peak.Fds; FdsAfter = $afterwards.Fds
        RssBefore = $before.RssMiB; RssPeak = $peak.RssMiB; RssAfter = $afterwards.RssMiB
    }
}
Remove-Item -Recurse -Force $work -ErrorAction Ignore
$results | Format-List
$results | ConvertTo-Json | Set-Content (Join-Path $root "out/bench/attacks-$(Get-Date -Format yyyyMMdd-HHmmss)$(if ($MutualTls) { '-mtls' }).json") -ErrorAction Continue
