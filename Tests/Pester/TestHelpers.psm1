# Shared helpers of the CriuPS Pester suites: build the C test targets, start them detached, talk to them,
# and make sure nothing a test started outlives it.

$script:RepositoryRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
$script:TargetSources = Join-Path $script:RepositoryRoot 'Tests/Targets'
$script:TargetBuild = Join-Path $script:TargetSources 'build'
$script:Started = [System.Collections.Generic.List[int]]::new()

function Import-CriuPS {
    Import-Module (Join-Path $script:RepositoryRoot 'out/CriuPS/CriuPS.psd1') -Force -Global
}

function Get-RepositoryRoot { $script:RepositoryRoot }

function Get-SharedInterop {
    $interop = Join-Path $script:RepositoryRoot '../shared/interop'
    if (-not (Test-Path $interop)) { throw "The CRIU interoperability vectors are missing: $interop" }
    (Resolve-Path $interop).Path
}

# Compiles Tests/Targets/NAME.c once per run (gcc -O2) and returns the binary's path. It is compiled again when it or
# the header the targets share (selfcheck.h) is newer than the binary.
function Get-TestTarget([string]$Name) {
    $binary = Join-Path $script:TargetBuild $Name
    $source = Join-Path $script:TargetSources "$Name.c"
    $newest = @($source, (Join-Path $script:TargetSources 'selfcheck.h') | ForEach-Object { (Get-Item $_).LastWriteTimeUtc } | Sort-Object)[-1]
    if (-not (Test-Path $binary) -or $newest -gt (Get-Item $binary).LastWriteTimeUtc) {
        New-Item -ItemType Directory -Force $script:TargetBuild | Out-Null
        $output = & gcc -O2 -Wall -pthread -o $binary $source 2>&1
        if ($LASTEXITCODE -ne 0) { throw "gcc failed for ${Name}: $output" }
    }
    $binary
}

# Builds the .NET test program Tests/Targets/NAME (a project folder) once per run and returns its executable.
function Get-DotnetTestTarget([string]$Name) {
    $output = Join-Path $script:TargetBuild $Name
    $binary = Join-Path $output $Name
    $project = Join-Path $script:TargetSources $Name
    $newest = (Get-ChildItem $project -File | Measure-Object -Property LastWriteTimeUtc -Maximum).Maximum
    if (-not (Test-Path $binary) -or $newest -gt (Get-Item $binary).LastWriteTimeUtc) {
        $log = & dotnet build $project -c Release -o $output --nologo -v quiet -p:AssemblyName=$Name 2>&1
        if ($LASTEXITCODE -ne 0) { throw "dotnet build failed for ${Name}: $log" }
    }
    $binary
}

# Waits until a condition holds, or fails with a message that says what was awaited.
function Wait-Until([scriptblock]$Condition, [string]$What, [double]$TimeoutSeconds = 15) {
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while (-not (& $Condition)) {
        if ([DateTime]::UtcNow -gt $deadline) { throw "Timed out after $TimeoutSeconds s waiting for: $What" }
        Start-Sleep -Milliseconds 20
    }
}

# Starts PROGRAM ARGS in WORKDIR, detached in a session of its own with a reaper as parent (Tests/Targets/launch.c),
# waits for WORKDIR/ready and returns the pid written there.
function Start-TestTarget {
    param([Parameter(Mandatory)][string]$Program, [string[]]$Arguments = @(), [Parameter(Mandatory)][string]$WorkDirectory,
        [double]$TimeoutSeconds = 15)
    New-Item -ItemType Directory -Force $WorkDirectory | Out-Null
    $ready = Join-Path $WorkDirectory 'ready'
    Remove-Item $ready -ErrorAction Ignore
    # launch notes in launch.log, with this tag, that the target ended before it was ready: no reason to wait out
    # the timeout then.
    $tag = [guid]::NewGuid().ToString('n')
    $env:CRIUPS_LAUNCH_TAG = $tag
    try { & (Get-TestTarget 'launch') $WorkDirectory $Program @Arguments } finally { Remove-Item Env:CRIUPS_LAUNCH_TAG }
    if ($LASTEXITCODE -ne 0) { throw "launch failed for $Program" }
    $ended = { (Get-Content (Join-Path $WorkDirectory 'launch.log') -Raw -ErrorAction Ignore) -match "\[$tag\]" }
    try {
        Wait-Until { ((Test-Path $ready) -and (Get-Content $ready -Raw) -match '^\d+\s*$') -or (& $ended) } "$Program to write $ready" $TimeoutSeconds
        if (& $ended) { throw "$Program ended before it wrote $ready" }
    }
    catch {
        # A target that gave up during its set-up says why in its log, and launch says how it ended (launch.log):
        # the failure shows both.
        $said = Get-ChildItem $WorkDirectory -Filter '*.log' -File -ErrorAction Ignore |
            ForEach-Object { "$($_.Name): $((Get-Content $_.FullName -Tail 5 -ErrorAction Ignore) -join ' | ')" }
        throw "$($_.Exception.Message)$(if ($said) { "; the target's logs: $($said -join '; ')" } else { ' (no log: the target neither said why nor ended, so it is still setting up)' })"
    }
    $target = [int](Get-Content $ready -Raw)
    $script:Started.Add($target)
    $target
}

function Test-ProcessAlive([int]$Id) {
    $stat = "/proc/$Id/stat"
    if (-not (Test-Path $stat)) { return $false }
    try { (Get-Content $stat -Raw -ErrorAction Stop).Split(') ')[1][0] -notin 'Z', 'X' } catch { $false }
}

function Send-Signal([int]$Id, [string]$Signal) {
    & kill -s $Signal $Id 2>$null
}

# Asks a selfcheck-style target to verify itself (SIGUSR1) and returns the line it appends to its log.
function Invoke-SelfCheck([int]$Id, [string]$Log, [string]$Signal = 'USR1', [double]$TimeoutSeconds = 15) {
    $before = if (Test-Path $Log) { @(Get-Content $Log).Count } else { 0 }
    Send-Signal $Id $Signal
    Wait-Until { (Test-Path $Log) -and @(Get-Content $Log).Count -gt $before } "process $Id to answer SIG$Signal in $Log" -TimeoutSeconds $TimeoutSeconds
    @(Get-Content $Log)[$before]
}

# Kills every process the tests started (and any given) with all their descendants, and waits until they are gone.
function Stop-TestProcesses([int[]]$Also = @()) {
    $victims = [System.Collections.Generic.HashSet[int]]::new()
    foreach ($id in @($script:Started) + $Also) {
        if (Test-ProcessAlive $id) {
            Get-ProcessTreeLayout $id | ForEach-Object { [void]$victims.Add([int]$_.Split(' ')[0]) }
        }
    }
    foreach ($id in $victims) { & kill -s KILL $id 2>$null }
    foreach ($id in $victims) {
        Wait-Until { -not (Test-ProcessAlive $id) } "process $id to end"
    }
    $script:Started.Clear()
}

# The children of $Parent whose command is $Name, by PID, zombies too.
function Get-ChildProcesses([string]$Name, [int]$Parent) {
    @(foreach ($dir in Get-ChildItem /proc -Directory | Where-Object Name -Match '^\d+$') {
        $stat = Get-Content "$($dir.FullName)/stat" -Raw -ErrorAction Ignore
        if ($stat -match "^\d+ \($([regex]::Escape($Name))\) \S $Parent ") { [int]$dir.Name }
    })
}

# The restore hosts this session started (`sleep 1000000`, forked by the engine) that are still around, zombies too.
function Get-RestoreHosts { Get-ChildProcesses 'sleep' $PID }

# The nftables tables named like the network lock ("table inet CRIU-..."), through the engine's own libnftables binding.
function Get-LockTable {
    Add-Type -Path (Join-Path $script:RepositoryRoot 'out/CriuPS/CriuPS.Native.dll')
    @([CriuPS.Native.Interop.Nftables]::Run('list tables') -split "`n" | Where-Object { $_ -match '^table inet CRIU-' })
}

# The points where CRIUPS_FAIL_AT makes a dump or a restore fail, in the order the pipeline passes them (the engine's
# internal FailurePoint lists, read by reflection).
function Get-FailurePoints([ValidateSet('Dump', 'Restore')][string]$Pipeline) {
    $type = [CriuPS.Engine.Restore.RestoreOptions].Assembly.GetType('CriuPS.Engine.FailurePoint', $true)
    @($type.GetField($Pipeline).GetValue($null))
}

# A Checkpoint-Process command line for a PowerShell of its own that a test makes die (CRIUPS_DIE_AT), or kills: its
# failure's message goes to stderr whole, unwrapped, for Get-CheckpointDeath to read.
function Get-DyingCheckpointCommand([string]$Module, [string]$Arguments) {
    "Import-Module '$Module'; try { Checkpoint-Process $Arguments -ErrorAction Stop | Out-Null } catch { [Console]::Error.WriteLine(`$_.Exception.Message); exit 1 }"
}

# How such a checkpoint ended: 'SIGKILL' when what ran the dump was killed by SIGKILL (at a death point): the
# PowerShell itself (exit status 137) for a checkpoint that runs in the session (pre-dumps, page servers), or
# criups-engine, which the PowerShell reports (its error names the signal); otherwise the status and what it said.
function Get-CheckpointDeath([Diagnostics.Process]$Process, [string]$ErrorFile) {
    $said = Get-Content $ErrorFile -Raw -ErrorAction Ignore
    if ($Process.ExitCode -eq 137 -or ($Process.ExitCode -eq 1 -and $said -match 'criups-engine \(PID \d+\), which ran the checkpoint, was killed by signal 9 ')) { 'SIGKILL' }
    else { "exit status $($Process.ExitCode): $said" }
}

# The criups-engine programs a PowerShell runs (its checkpoints), by PID.
function Get-EngineProcesses([int]$PowerShell) { Get-ChildProcesses 'criups-engine' $PowerShell }

# The image a checkpoint returned, against what Get-CheckpointImage reads from its directory: a dump makes its result
# from the entries it wrote, not from reading them back, and the two must say the same in every property.
function Assert-ReadsAsReturned($Image) {
    $read = Get-CheckpointImage -Path $Image.Path
    ($Image | ConvertTo-Json -Depth 8 -Compress) | Should -BeExactly ($read | ConvertTo-Json -Depth 8 -Compress) -Because 'the image read from its directory is the one the checkpoint returned'
}

# Registers a pid (e.g. a restored process) to be killed by Stop-TestProcesses.
function Register-TestProcess([int]$Id) { $script:Started.Add($Id) }

# A throwaway self-signed certificate (RSA 2048, for IPADDRESS) with its key in PEM files NAME.pem and NAME.key in
# DIRECTORY, as a page server or its client would be given them; Certificate is the loaded certificate (no key).
function New-TestCertificate([string]$Name, [string]$Directory, [string]$IpAddress = '127.0.0.1') {
    $key = [System.Security.Cryptography.RSA]::Create(2048)
    $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new("CN=$Name", $key, 'SHA256', [System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
    $names = [System.Security.Cryptography.X509Certificates.SubjectAlternativeNameBuilder]::new()
    $names.AddIpAddress([System.Net.IPAddress]::Parse($IpAddress))
    $request.CertificateExtensions.Add($names.Build())
    $certificate = $request.CreateSelfSigned([DateTimeOffset]::Now.AddMinutes(-5), [DateTimeOffset]::Now.AddDays(1))
    $pem = Join-Path $Directory "$Name.pem"
    $keyPem = Join-Path $Directory "$Name.key"
    Set-Content $pem $certificate.ExportCertificatePem()
    Set-Content $keyPem $key.ExportPkcs8PrivateKeyPem()
    [pscustomobject]@{ Path = $pem; KeyPath = $keyPem; Certificate = [System.Security.Cryptography.X509Certificates.X509CertificateLoader]::LoadCertificateFromFile($pem) }
}

# The process tree under a root, one line per process: "pid ppid pgid sid state" (S, T or Z), sorted, to compare layouts.
function Get-ProcessTreeLayout([int]$Root) {
    $all = foreach ($dir in Get-ChildItem /proc -Directory | Where-Object Name -Match '^\d+$') {
        try {
            $stat = Get-Content "$($dir.FullName)/stat" -Raw -ErrorAction Stop
            $fields = $stat.Substring($stat.LastIndexOf(')') + 2).Split(' ')
            # Running or sleeping is a matter of the moment; stopped and zombie are what a checkpoint keeps.
            $state = if ($fields[0] -in 'R', 'D') { 'S' } else { $fields[0] }
            [pscustomobject]@{ Pid = [int]$dir.Name; State = $state; Ppid = [int]$fields[1]; Pgid = [int]$fields[2]; Sid = [int]$fields[3] }
        }
        catch { }
    }
    $inTree = [System.Collections.Generic.HashSet[int]]::new()
    [void]$inTree.Add($Root)
    do {
        $grown = $false
        foreach ($p in $all) { if ($inTree.Contains($p.Ppid) -and $inTree.Add($p.Pid)) { $grown = $true } }
    } while ($grown)
    $all | Where-Object { $inTree.Contains($_.Pid) } | Sort-Object Pid | ForEach-Object { "$($_.Pid) $($_.Ppid) $($_.Pgid) $($_.Sid) $($_.State)" }
}

# Where the saved bytes of a page lie: the pages file of process PID's pagemap in an image directory and the offset in
# it (the present runs' pages follow one another there, in pagemap order), or $null when the page was not saved there.
function Get-SavedPageLocation([string]$ImagePath, [int]$ProcessId, [uint64]$Address) {
    $pagemap = @((Import-CheckpointImageFile (Join-Path $ImagePath "pagemap-$ProcessId.img")).Entries)
    $offset = 0L
    foreach ($run in $pagemap | Select-Object -Skip 1) {
        $from = [Convert]::ToUInt64($run.vaddr.Substring(2), 16)
        $pages = [long]$run.nr_pages
        $present = $run.flags -match 'PE_PRESENT'
        if ($present -and $Address -ge $from -and $Address -lt $from + 4096 * $pages) {
            return [pscustomobject]@{ Path = Join-Path $ImagePath "pages-$($pagemap[0].pages_id).img"; Offset = $offset + [long]($Address - $from) }
        }
        if ($present) { $offset += 4096L * $pages }
    }
    $null
}

# The mode bits of a file or directory, as an octal string such as '700'.
function Get-ModeBits([string]$Path) {
    [Convert]::ToString([int]([System.IO.File]::GetUnixFileMode($Path)) -band 0x1FF, 8)
}

# The steps a dump.log or restore.log names as they begin ("dump step: NAME", "restore step: NAME"), in order.
function Get-LoggedSteps([string]$LogPath, [ValidateSet('dump', 'restore')][string]$Kind) {
    @(Select-String -LiteralPath $LogPath -Pattern "$Kind step: (.+)$" | ForEach-Object { $_.Matches[0].Groups[1].Value })
}

Export-ModuleMember -Function *
