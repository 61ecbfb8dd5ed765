#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Builds, tests, demonstrates and benchmarks CriuPS.
.DESCRIPTION
    Build   (default) checks the repository's PowerShell files (see Invoke-Lint), then builds the module into
            out/CriuPS, importable with Import-Module ./out/CriuPS/CriuPS.psd1.
    Test    builds, then runs every test (xunit and Pester) and prints one summary line "N passed, N failed".
    Demo    builds, starts a small program, checkpoints it, restores it and shows it running with the same PID.
    Bench   builds, then measures checkpoint and restore against this machine's limits (bench/Invoke-Benchmark.ps1).
    Package builds, then packs out/CriuPS into out/packages/CriuPS.<version>.nupkg (build/New-ModulePackage.ps1),
            which Install-PSResource or Install-Module install from a repository holding it (a folder will do).
.EXAMPLE
    dotnet tool restore; dotnet pwsh ./build.ps1 Test
.EXAMPLE
    dotnet pwsh ./build.ps1 Package; Register-PSResourceRepository -Name Local -Uri ./out/packages -Trusted; Install-PSResource CriuPS -Repository Local
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Demo', 'Bench', 'Package')]
    [string]$Task = 'Build',

    [ValidateSet('Debug', 'Release')]
    [string]$Configuration = 'Release'
)

$ErrorActionPreference = 'Stop'
$root = $PSScriptRoot
$moduleOut = Join-Path $root 'out/CriuPS'

function Invoke-Native([string]$What, [scriptblock]$Command) {
    & $Command
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit code $LASTEXITCODE)" }
}

# The repository's own PowerShell files are checked before every build by build/Test-PowerShellFiles.ps1, with the
# parser's AST (PSScriptAnalyzer is not available offline). Its rules are few, and each catches a real problem:
#   ParseError        a script, module or data file that does not parse; a *.ps1xml that is not well-formed XML.
#   Alias             a command called by an alias (%, ?, gci, select...): aliases differ between platforms and
#                     sessions, and hide what a script does.
#   WriteHostInModule Write-Host in a module (*.psm1): module code writes objects, verbose or warnings, never to
#                     the host. Scripts such as this one may talk to the person running them.
#   NullOnRight       $x -eq $null: with an array on the left PowerShell filters the array instead of comparing;
#                     $null belongs on the left.
function Invoke-Lint {
    $problems = @(& (Join-Path $root 'build/Test-PowerShellFiles.ps1') -Path $root)
    if ($problems.Count -gt 0) {
        throw "PowerShell checks failed:`n  $(($problems | ForEach-Object { "$($_.File):$($_.Line): $($_.Rule): $($_.Message)" }) -join "`n  ")"
    }
}

function Invoke-Build {
    Invoke-Lint
    Write-Host "Building CriuPS ($Configuration) into $moduleOut"
    if (Test-Path $moduleOut) { Remove-Item -Recurse -Force $moduleOut }
    # The precompiled cmdlets resolve PowerShell's types in the pwsh of the tool manifest (CriuPS.csproj says why).
    $powerShellTool = (Get-Content (Join-Path $root '.config/dotnet-tools.json') -Raw | ConvertFrom-Json).tools.powershell.version
    Invoke-Native 'dotnet publish' { dotnet publish (Join-Path $root 'CriuPS/CriuPS.csproj') -c $Configuration -o $moduleOut --nologo -v quiet "-p:PowerShellToolVersion=$powerShellTool" }
    # criups-init, the init of the PID namespaces that Restore-Process -NewPidNamespace makes: a native program
    # (NativeAOT, linked with gcc) beside the engine. Its symbols (.dbg) stay out of the module.
    Invoke-Native 'dotnet publish of criups-init' { dotnet publish (Join-Path $root 'CriuPS.Init/CriuPS.Init.csproj') -c $Configuration -o $moduleOut --nologo -v quiet }
    # criups-engine, the engine compiled ahead of time (NativeAOT), which Checkpoint-Process runs for each checkpoint
    # to a directory: a fresh PowerShell would otherwise compile the engine's code during its first checkpoint. It is
    # published apart and only the program is taken: its assemblies' symbols must not replace the module's.
    $engineOut = Join-Path $root "out/criups-engine"
    Invoke-Native 'dotnet publish of criups-engine' { dotnet publish (Join-Path $root 'CriuPS.EngineProcess/CriuPS.EngineProcess.csproj') -c $Configuration -o $engineOut --nologo -v quiet }
    Copy-Item (Join-Path $engineOut 'criups-engine') $moduleOut
    Get-ChildItem $moduleOut -Filter '*.dbg' | Remove-Item
    Copy-Item (Join-Path $root 'CriuPS.psd1'), (Join-Path $root 'CriuPS.Format.ps1xml'), (Join-Path $root 'CriuPS.Types.ps1xml') $moduleOut
    Get-ChildItem $moduleOut -Filter '*.pdb' | Remove-Item
    Get-ChildItem $moduleOut -Filter '*.deps.json' | Remove-Item
    # Help: en-US/CriuPS.dll-Help.xml from docs/*.md and the built cmdlets' metadata, plus en-US/about_CriuPS.help.txt
    # (schema: docs/README.md). A pwsh of its own imports the new module: this session may hold an older CriuPS.dll.
    Invoke-Native 'Help generation' {
        & (Join-Path $PSHOME 'pwsh') -NoProfile -NonInteractive -File (Join-Path $root 'build/ConvertTo-MamlHelp.ps1') -ModulePath (Join-Path $moduleOut 'CriuPS.psd1')
    }
    $manifest = Test-ModuleManifest (Join-Path $moduleOut 'CriuPS.psd1')
    $assembly = [Reflection.AssemblyName]::GetAssemblyName((Join-Path $moduleOut 'CriuPS.dll')).Version
    if ($manifest.Version -ne [version]$assembly.ToString(3)) {
        throw "CriuPS.psd1 says version $($manifest.Version) but the assemblies are $($assembly.ToString(3)) (Directory.Build.props)"
    }
    Write-Host "Built CriuPS $($manifest.Version) with $($manifest.ExportedCmdlets.Count) cmdlets"
}

# The Debian packages the tests and the demo need at run time: libnftables1 (the network lock of
# Checkpoint-Process -TcpEstablished), redis, OpenJDK (default-jre-headless), tmux and screen for real programs, libcap2-bin (setcap: the unprivileged tests give a
# copy of the dotnet host file capabilities), iproute2 and procps (network namespaces), openssh-server (the destination
# host of the Move-Process tests runs sshd with PowerShell as its subsystem) and ansible-core (the Ansible collection's
# playbook test). Installs what is missing with apt-get, as root, without questions;
# fails with a message saying what to install when it cannot.
$script:TestPackages = @('libnftables1', 'redis-server', 'redis-tools', 'libcap2-bin', 'default-jre-headless', 'tmux', 'screen', 'iproute2', 'procps', 'openssh-server', 'ansible-core', 'runc', 'busybox-static')

function Install-TestPrerequisites([string[]]$Packages = $script:TestPackages) {
    if (-not (Get-Command dpkg-query -ErrorAction Ignore)) {
        throw "dpkg-query is missing: this is not a Debian system. Install the equivalents of these Debian packages by hand: $($Packages -join ', ')"
    }
    $missing = @($Packages | Where-Object { (& dpkg-query -W -f '${Status}' $_ 2>$null) -ne 'install ok installed' })
    if ($missing.Count -eq 0) { return }
    Write-Host "Installing the Debian packages the tests need: $($missing -join ', ')"
    if ((& id -u) -ne '0') { throw "Missing Debian packages $($missing -join ', '); run as root, or install them: apt-get install $($missing -join ' ')" }
    $env:DEBIAN_FRONTEND = 'noninteractive'
    & apt-get update -q | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "apt-get update failed (exit code $LASTEXITCODE); install by hand: apt-get install $($missing -join ' ')" }
    & apt-get install -y -q --no-install-recommends @missing | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "apt-get install $($missing -join ' ') failed (exit code $LASTEXITCODE)" }
    $still = @($missing | Where-Object { (& dpkg-query -W -f '${Status}' $_ 2>$null) -ne 'install ok installed' })
    if ($still.Count -gt 0) { throw "apt-get did not install $($still -join ', ')" }
}

function Get-PesterModulePath {
    Invoke-Native 'dotnet restore of test tools' { dotnet restore (Join-Path $root 'Tests/Tools/Tools.csproj') --nologo -v quiet }
    $packages = if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else { Join-Path $HOME '.nuget/packages' }
    $pester = Join-Path $packages 'pester/5.7.1/tools/Pester.psd1'
    if (-not (Test-Path $pester)) { throw "Pester was not restored to $pester" }
    $pester
}

function Invoke-XunitTests {
    $results = Join-Path $root 'out/test-results'
    New-Item -ItemType Directory -Force $results | Out-Null
    $trx = Join-Path $results 'xunit.trx'
    Remove-Item $trx -ErrorAction Ignore
    dotnet test (Join-Path $root 'Tests/CriuPS.Engine.Tests/CriuPS.Engine.Tests.csproj') -c $Configuration --nologo `
        --logger "trx;LogFileName=$trx" --logger 'console;verbosity=minimal' | Out-Host
    if (-not (Test-Path $trx)) { throw 'xunit produced no results' }
    $run = ([xml](Get-Content -Raw $trx)).TestRun
    # Each failure with the first lines of its message, printed again at the very end: CI shows only the end.
    $failures = foreach ($failure in @($run.Results.UnitTestResult | Where-Object outcome -notin 'Passed', 'NotExecuted')) {
        "FAILED (xunit) $($failure.testName)"
        "$($failure.Output.ErrorInfo.Message)" -split "`n" | Select-Object -First 6 | ForEach-Object { "    $_" }
    }
    $counters = $run.ResultSummary.Counters
    [pscustomobject]@{
        Passed = [int]$counters.passed; Failed = [int]$counters.failed + [int]$counters.error + [int]$counters.timeout
        Skipped = [int]$counters.notExecuted; Failures = @($failures)
    }
}

function Invoke-PesterTests {
    $pester = Get-PesterModulePath
    # A separate pwsh: the tests load the module, and restored processes become that session's children.
    $script = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$pester'
`$config = New-PesterConfiguration
`$config.Run.Path = '$(Join-Path $root 'Tests/Pester')'
`$config.Run.PassThru = `$true
`$config.Output.Verbosity = 'Detailed'
`$result = Invoke-Pester -Configuration `$config
# CI shows only the end of the output: name every failure again there, with the first lines of its error.
foreach (`$failure in @(`$result.Failed) + @(`$result.FailedBlocks) + @(`$result.FailedContainers)) {
    `$name = if (`$failure.ExpandedPath) { `$failure.ExpandedPath } elseif (`$failure.Path) { `$failure.Path -join ' ' } else { "`$(`$failure.Item)" }
    "FAILED (Pester) `$name"
    foreach (`$record in `$failure.ErrorRecord) {
        ("`$record" -split "``n" | Select-Object -First 6 | ForEach-Object { "    `$_" })
        # The test's own frames, not Pester's.
        `$frames = @(`$record.ScriptStackTrace -split "``n" | Where-Object { `$_ -notmatch '[\\/]Pester\.psm?1:' } | Select-Object -First 3)
        if (`$frames) { "    " + (`$frames -join ' <- ') }
    }
}
"PESTER-COUNTS {0} {1} {2}" -f `$result.PassedCount, (`$result.FailedCount + `$result.FailedBlocksCount + `$result.FailedContainersCount), `$result.SkippedCount
"@
    $counts = $null
    & (Join-Path $PSHOME 'pwsh') -NoProfile -NonInteractive -Command $script | ForEach-Object {
        if ($_ -match '^PESTER-COUNTS (\d+) (\d+) (\d+)$') { $counts = $Matches } else { Write-Host $_ }
    }
    if (-not $counts) { return [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0 } }
    [pscustomobject]@{ Passed = [int]$counts[1]; Failed = [int]$counts[2]; Skipped = [int]$counts[3] }
}

function Invoke-Tests {
    Install-TestPrerequisites
    Invoke-Build
    $xunit = Invoke-XunitTests
    $pester = Invoke-PesterTests
    $xunit.Failures | Write-Host
    $passed = $xunit.Passed + $pester.Passed
    $failed = $xunit.Failed + $pester.Failed
    $skipped = $xunit.Skipped + $pester.Skipped
    Write-Host "xunit: $($xunit.Passed) passed, $($xunit.Failed) failed, $($xunit.Skipped) skipped"
    Write-Host "Pester: $($pester.Passed) passed, $($pester.Failed) failed, $($pester.Skipped) skipped"
    $summary = "$passed passed, $failed failed"
    if ($skipped -gt 0) { $summary += ", $skipped skipped" }
    Write-Host $summary
    if ($failed -gt 0) { exit 1 }
}

function Invoke-Demo {
    Install-TestPrerequisites
    Invoke-Build
    Import-Module (Join-Path $moduleOut 'CriuPS.psd1') -Force
    $work = Join-Path ([IO.Path]::GetTempPath()) "criups-demo-$PID"
    New-Item -ItemType Directory -Force $work | Out-Null
    try {
        $source = Join-Path $root 'Tests/Targets/demo.c'
        $binary = Join-Path $work 'demo'
        Invoke-Native 'gcc' { gcc -O2 -o $binary $source }
        $launcher = Join-Path $work 'launch'
        Invoke-Native 'gcc' { gcc -O2 -o $launcher (Join-Path $root 'Tests/Targets/launch.c') }
        $log = Join-Path $work 'demo.log'
        & $launcher $work $binary $log
        $ready = Join-Path $work 'ready'
        while (-not (Test-Path $ready)) { Start-Sleep -Milliseconds 20 }
        $target = Get-Process -Id ([int](Get-Content $ready))
        Start-Sleep -Milliseconds 500
        Write-Host "Started demo process $($target.Id); its log so far:"
        Get-Content $log | Select-Object -Last 2 | Write-Host

        $image = $target | Checkpoint-Process -ImagePath (Join-Path $work 'image') -Verbose
        $image | Format-List Path, RootProcessId, Name, MemoryBytes, Pages, FrozenTime, TotalTime | Out-Host
        Write-Host "Process $($target.Id) running after checkpoint: $([bool](Get-Process -Id $target.Id -ErrorAction Ignore))"

        $restored = $image | Restore-Process -Verbose
        $restored | Format-List Id, Name, RestoreTime | Out-Host
        Start-Sleep -Milliseconds 500
        Write-Host "Restored process $($restored.Id) carries on (same PID: $($restored.Id -eq $target.Id)); its log:"
        Get-Content $log | Select-Object -Last 3 | Write-Host
        $restored | Stop-Process
    }
    finally {
        Remove-Item -Recurse -Force $work -ErrorAction Ignore
    }
}

function Invoke-Package {
    Invoke-Build
    $package = & (Join-Path $root 'build/New-ModulePackage.ps1') -ModulePath $moduleOut -OutputPath (Join-Path $root 'out/packages')
    Write-Host "Packed $($package.FullName)"
}

switch ($Task) {
    'Build' { Invoke-Build }
    'Test' { Invoke-Tests }
    'Demo' { Invoke-Demo }
    'Bench' {
        Invoke-Build
        & (Join-Path $root 'bench/Invoke-Benchmark.ps1')
    }
    'Package' { Invoke-Package }
}
