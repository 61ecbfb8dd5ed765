# Unprivileged users: a user made by the test checkpoints and restores their own process with CAP_CHECKPOINT_RESTORE and
# CAP_SYS_PTRACE only (as ambient capabilities through setpriv, or as file capabilities of a copy of the dotnet host),
# and gets errors that name what is missing: for a root process, a root-only image, a directory they may not write, and
# everything once the capabilities are gone. Each session is a copy of this PowerShell run as that user.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    if ((id -u) -ne '0') { throw 'These tests make a user and grant it capabilities: run them as root.' }

    $script:User = "criups-t$PID"
    & useradd --system --no-create-home --user-group --shell /usr/sbin/nologin $User
    if ($LASTEXITCODE -ne 0) { throw "useradd $User failed" }
    $script:Uid = [int](id -u $User)
    $script:Gid = [int](id -g $User)

    # Everything the user runs or writes lies under one directory of $TestDrive that the user may enter: a copy of
    # this PowerShell, of the module and of the test programs, the user's home, and the user's own work directory.
    chmod 0755 $TestDrive
    $script:Share = Join-Path $TestDrive 'share'
    New-Item -ItemType Directory $Share | Out-Null
    Copy-Item -Recurse $PSHOME (Join-Path $Share 'pwsh')
    Copy-Item -Recurse (Join-Path (Get-RepositoryRoot) 'out/CriuPS') (Join-Path $Share 'CriuPS')
    $bin = New-Item -ItemType Directory (Join-Path $Share 'bin')
    $script:Launch = Copy-Item (Get-TestTarget 'launch') $bin -PassThru
    $script:SelfCheck = Copy-Item (Get-TestTarget 'selfcheck') $bin -PassThru
    $script:NonDumpable = Copy-Item (Get-TestTarget 'nondumpable') $bin -PassThru
    & chmod -R a+rX $Share
    $script:UserHome = New-Item -ItemType Directory (Join-Path $Share 'home')
    $script:Work = New-Item -ItemType Directory (Join-Path $Share 'work')
    & chown "${Uid}:${Gid}" $UserHome $Work

    # A copy of the dotnet host with the two capabilities as file capabilities, next to links to the runtime it loads.
    # The dotnet host of the runtime this session runs on, however this session was started (`dotnet pwsh` or the pwsh
    # apphost, as build.ps1 starts the tests): the runtime lies in <dotnet root>/shared/Microsoft.NETCore.App/<version>/.
    $runtime = Get-Item ([Runtime.InteropServices.RuntimeEnvironment]::GetRuntimeDirectory())
    $script:DotnetHost = Join-Path $runtime.Parent.Parent.Parent.FullName 'dotnet'
    if (-not (Test-Path $DotnetHost -PathType Leaf)) { throw "No dotnet host at $DotnetHost" }
    $dotnet = $DotnetHost
    $script:CapableHost = New-Item -ItemType Directory (Join-Path $Share 'dotnet-caps')
    Copy-Item $dotnet $CapableHost
    foreach ($part in 'host', 'shared') { New-Item -ItemType SymbolicLink -Path (Join-Path $CapableHost $part) -Target (Join-Path (Split-Path $dotnet) $part) | Out-Null }
    & setcap 'cap_checkpoint_restore,cap_sys_ptrace+eip' (Join-Path $CapableHost 'dotnet')
    if ($LASTEXITCODE -ne 0) { throw 'setcap failed' }

    # What every session of the user runs first: the module, and a way to report errors as data.
    $script:Prologue = @"
`$ErrorActionPreference = 'Stop'
`$WarningPreference = 'SilentlyContinue'  # warnings would mix with the JSON on stdout: sessions report those they meet
Import-Module '$Share/CriuPS/CriuPS.psd1'
function Get-ErrorSummary(`$Errors) {
    if (`$Errors) {
        `$e = `$Errors[0]
        [pscustomobject]@{ Id = `$e.FullyQualifiedErrorId; Category = "`$(`$e.CategoryInfo.Category)"; Target = "`$(`$e.TargetObject)"
            Message = `$e.ErrorDetails.Message ?? `$e.Exception.Message; Action = `$e.ErrorDetails.RecommendedAction }
    }
}
function Start-OwnTarget([string]`$Work, [string[]]`$Program = @('$SelfCheck', 'sleep', `$Work)) {
    New-Item -ItemType Directory `$Work | Out-Null
    & '$Launch' `$Work @Program
    `$ready = Join-Path `$Work ready
    `$deadline = [DateTime]::UtcNow.AddSeconds(15)
    while (-not ((Test-Path `$ready) -and (Get-Content `$ready -Raw) -match '^\d+\s*$')) {
        if ([DateTime]::UtcNow -gt `$deadline) { throw "the target did not start in `$Work" }
        Start-Sleep -Milliseconds 20
    }
    [int](Get-Content `$ready -Raw)
}
function Wait-Gone([int]`$Id) {
    `$deadline = [DateTime]::UtcNow.AddSeconds(15)
    while ((Test-Path "/proc/`$Id") -and [DateTime]::UtcNow -lt `$deadline) { Start-Sleep -Milliseconds 20 }
}
"@

    # Runs a script as the user in a copy of this PowerShell and returns what it writes as JSON. -Capabilities: with
    # CAP_CHECKPOINT_RESTORE and CAP_SYS_PTRACE as ambient capabilities (setpriv); -FileCapabilities: through the dotnet
    # host copy that carries them; neither: with none.
    function Invoke-AsUser([string]$Script, [switch]$Capabilities, [switch]$FileCapabilities) {
        $file = Join-Path $Share "session-$([guid]::NewGuid().ToString('n')).ps1"
        Set-Content $file ($Prologue + "`n" + $Script + "`n")
        & chmod a+r $file
        $caps = @(if ($Capabilities) { '--inh-caps=+checkpoint_restore,+sys_ptrace', '--ambient-caps=+checkpoint_restore,+sys_ptrace' } else { '--inh-caps=-all' })
        $dotnet = if ($FileCapabilities) { Join-Path $CapableHost 'dotnet' } else { $DotnetHost }
        $stderr = Join-Path $TestDrive 'session.err'
        $json = & env -i "HOME=$UserHome" "PATH=$env:PATH" NO_COLOR=1 TERM=dumb POWERSHELL_TELEMETRY_OPTOUT=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 `
            timeout 180 setpriv "--reuid=$Uid" "--regid=$Gid" --init-groups @caps -- $dotnet (Join-Path $Share 'pwsh/pwsh.dll') -NoProfile -NonInteractive -File $file 2>$stderr
        if ($LASTEXITCODE -ne 0) { throw "The session as $User failed ($LASTEXITCODE): $(Get-Content $stderr -Raw) $json" }
        ($json -join "`n") | ConvertFrom-Json
    }

    # What only root may read: a process of root's and a checkpoint of it (its directory 0700, as every image).
    $rootWork = Join-Path $TestDrive 'root-target'
    $script:RootLog = Join-Path $rootWork 'selfcheck.log'
    $script:RootTarget = Start-TestTarget -Program (Get-TestTarget 'selfcheck') -Arguments 'sleep', $rootWork -WorkDirectory $rootWork
    $script:RootImage = (Checkpoint-Process -Id $RootTarget -ImagePath (Join-Path $Share 'root-image') -LeaveRunning).Path
    $script:Unwritable = New-Item -ItemType Directory (Join-Path $Share 'root-only')
    & chmod 0755 $Unwritable
    $script:OwnImage = Join-Path $Work 'own-image'
    # An image of root's that the user may read: restoring it would take root's ids and capabilities.
    $script:RootReadable = (Checkpoint-Process -Id $RootTarget -ImagePath (Join-Path $Share 'root-readable') -LeaveRunning).Path
    & chmod -R a+rX $RootReadable

    # The session of the user with the capabilities; here, since $TestDrive loses what a Describe block made when it
    # ends, and the image it makes serves the session without them too.
    $script:Session = Invoke-AsUser -Capabilities @"
`$target = Start-OwnTarget '$Work/own'
`$image = Checkpoint-Process -Id `$target -ImagePath '$OwnImage' -ErrorVariable checkpointErrors -ErrorAction SilentlyContinue
Wait-Gone `$target
`$restored = if (`$image) { Restore-Process -ImagePath '$OwnImage' -ErrorVariable restoreErrors -WarningVariable restoreWarnings -ErrorAction SilentlyContinue }
Checkpoint-Process -Id $RootTarget -ImagePath '$Work/root-attempt' -ErrorVariable rootErrors -ErrorAction SilentlyContinue
Get-CheckpointImage -LiteralPath '$RootImage' -ErrorVariable readErrors -ErrorAction SilentlyContinue
Restore-Process -ImagePath '$RootImage' -ErrorVariable rootRestoreErrors -ErrorAction SilentlyContinue
Restore-Process -ImagePath '$RootReadable' -ErrorVariable othersErrors -ErrorAction SilentlyContinue
Checkpoint-Process -Id `$target -ImagePath '$Unwritable/image' -LeaveRunning -ErrorVariable writeErrors -ErrorAction SilentlyContinue
`$guarded = Start-OwnTarget '$Work/nondumpable' '$NonDumpable'
Checkpoint-Process -Id `$guarded -ImagePath '$Work/nondumpable-image' -ErrorVariable guardedErrors -ErrorAction SilentlyContinue
[pscustomobject]@{
    Target = `$target; Guarded = `$guarded; GuardedError = Get-ErrorSummary `$guardedErrors; ImageOwner = (Get-Item '$OwnImage').User; Restored = `$restored.Id; RestoredParent = `$restored.Parent.Id; Session = `$PID
    CheckpointError = Get-ErrorSummary `$checkpointErrors; RestoreError = Get-ErrorSummary `$restoreErrors
    RootError = Get-ErrorSummary `$rootErrors; ReadError = Get-ErrorSummary `$readErrors; RootRestoreError = Get-ErrorSummary `$rootRestoreErrors
    OthersError = Get-ErrorSummary `$othersErrors; WriteError = Get-ErrorSummary `$writeErrors; RestoreWarnings = @(`$restoreWarnings | ForEach-Object Message)
    Support = @(Test-CheckpointSupport | Select-Object Name, Available, Detail); Quiet = Test-CheckpointSupport -Quiet
} | ConvertTo-Json -Depth 4
"@
    foreach ($id in $Session.Target, $Session.Guarded) { if ($id) { Register-TestProcess $id } }
}

AfterAll {
    Stop-TestProcesses
    # Whatever still runs as the user (a session cut short): each by its PID, then the user goes.
    foreach ($process in Get-ChildItem /proc -Directory | Where-Object Name -Match '^\d+$') {
        $status = Get-Content (Join-Path $process.FullName 'status') -Raw -ErrorAction Ignore
        if ($status -match '(?m)^Uid:\s+(\d+)' -and [int]$Matches[1] -eq $Uid) { & kill -s KILL ([int]$process.Name) 2>$null }
    }
    & userdel $User
}

Describe 'A user with CAP_CHECKPOINT_RESTORE and CAP_SYS_PTRACE' {
    It 'checkpoints and restores their own self-checking process, which verifies itself' {
        $Session.CheckpointError | Should -BeNullOrEmpty
        $Session.RestoreError | Should -BeNullOrEmpty
        $Session.RestoreWarnings | Should -BeNullOrEmpty
        $Session.ImageOwner | Should -Be $User
        $Session.Restored | Should -Be $Session.Target
        $Session.RestoredParent | Should -Be $Session.Session
        $log = Join-Path $Work 'own/selfcheck.log'
        Invoke-SelfCheck $Session.Target $log | Should -Match "^OK counter=\d+ pid=$($Session.Target)$"
        (Get-Content "/proc/$($Session.Target)/status" | Select-String '^Uid:').Line | Should -Match "^Uid:\s+$Uid\s+$Uid\s+$Uid\s+$Uid$"
        Invoke-SelfCheck $Session.Target $log 'TERM' | Should -Match '^EXIT OK'
    }

    It 'is refused a root process with InsufficientPrivilege naming what is missing, and the process runs on' {
        $Session.RootError.Id | Should -Be 'InsufficientPrivilege,CriuPS.Cmdlets.CheckpointProcessCommand'
        $Session.RootError.Category | Should -Be 'PermissionDenied'
        $Session.RootError.Target | Should -Be $RootTarget
        $Session.RootError.Message | Should -Match "its /proc files \(open descriptors, mapped files, memory\) belong to uid 0 \(root\), and opening them needs CAP_DAC_OVERRIDE"
        $Session.RootError.Message | Should -Match "this session runs as uid $Uid \($User\) with CAP_SYS_PTRACE, CAP_CHECKPOINT_RESTORE"
        $Session.RootError.Action | Should -Match '--ambient-caps=\+dac_override,\+sys_ptrace,\+checkpoint_restore pwsh' -Because 'it keeps what the session has'
        Invoke-SelfCheck $RootTarget $RootLog | Should -Match '^OK'
    }

    It 'is refused their own process that is not dumpable, whose /proc files are root''s, naming CAP_DAC_OVERRIDE' {
        $Session.GuardedError.Id | Should -Be 'InsufficientPrivilege,CriuPS.Cmdlets.CheckpointProcessCommand'
        $Session.GuardedError.Target | Should -Be $Session.Guarded
        $Session.GuardedError.Message | Should -Match "belong to uid 0 \(root\), and opening them needs CAP_DAC_OVERRIDE"
        $Session.GuardedError.Message | Should -Not -Match 'not dumpable' -Because 'CAP_SYS_PTRACE lets the session trace it'
        Test-ProcessAlive $Session.Guarded | Should -BeTrue
    }

    It 'is refused a root-only image with PermissionDenied naming the directory, its owner and mode' {
        foreach ($failure in $Session.ReadError, $Session.RootRestoreError) {
            $failure.Id | Should -Match '^PermissionDenied,CriuPS\.Cmdlets\.(GetCheckpointImage|RestoreProcess)Command$'
            $failure.Category | Should -Be 'PermissionDenied'
            $failure.Target | Should -Be $RootImage
            $failure.Message | Should -BeLike "*'$RootImage' (owner uid 0 (root), mode 0700) may not be read by this session (uid $Uid ($User))*"
        }
    }

    It 'is refused, before anything is created, the image of a root process, with InsufficientPrivilege naming each capability it needs' {
        $Session.OthersError.Id | Should -Be 'InsufficientPrivilege,CriuPS.Cmdlets.RestoreProcessCommand'
        $Session.OthersError.Target | Should -Be $RootReadable
        $Session.OthersError.Message | Should -Match 'nothing was created'
        $Session.OthersError.Message | Should -Match 'it ran as uid 0 \(root\), and taking another user''s ids needs CAP_SETUID'
        $Session.OthersError.Message | Should -Match 'it ran with group 0, and taking another group''s ids needs CAP_SETGID'
        $Session.OthersError.Message | Should -Match 'it held capabilities this session does not have to give \(CAP_CHOWN, '
        $Session.OthersError.Message | Should -Not -Match 'CAP_CHECKPOINT_RESTORE \(or' -Because 'the session has that one'
        Invoke-SelfCheck $RootTarget $RootLog | Should -Match '^OK' -Because 'the PID in use was never touched'
    }

    It 'is refused an image path in a directory they may not write, with PermissionDenied naming it' {
        $Session.WriteError.Id | Should -Be 'PermissionDenied,CriuPS.Cmdlets.CheckpointProcessCommand'
        $Session.WriteError.Message | Should -BeLike "*'$Unwritable' (owner uid 0 (root), mode 0755) may not be written*"
        Test-Path (Join-Path $Unwritable 'image') | Should -BeFalse
    }

    It 'sees its capabilities in Test-CheckpointSupport, and those it lacks with what each prevents' {
        $support = @{}
        foreach ($item in $Session.Support) { $support[$item.Name] = $item }
        $support['CAP_CHECKPOINT_RESTORE'].Available | Should -BeTrue
        $support['CAP_SYS_PTRACE'].Available | Should -BeTrue
        foreach ($name in 'Root', 'CAP_SYS_ADMIN', 'CAP_DAC_OVERRIDE', 'CAP_SETUID', 'CAP_SETGID', 'CAP_NET_ADMIN') {
            $support[$name].Available | Should -BeFalse -Because $name
        }
        $support['CAP_SETUID'].Detail | Should -Match "neither permitted nor effective: this session runs as uid $Uid"
        $support['Root'].Detail | Should -Match "effective uid $Uid \($User\)"
        $support['Clone3SetTid'].Available | Should -BeTrue
        $Session.Quiet | Should -BeTrue -Because 'the essential features are there'
    }
}

Describe 'The same user without capabilities' {
    BeforeAll {
        $script:Bare = Invoke-AsUser @"
`$target = Start-OwnTarget '$Work/bare'
Checkpoint-Process -Id `$target -ImagePath '$Work/bare-image' -ErrorVariable checkpointErrors -ErrorAction SilentlyContinue
Restore-Process -ImagePath '$OwnImage' -ErrorVariable restoreErrors -ErrorAction SilentlyContinue
[pscustomobject]@{
    Target = `$target; Caps = (Get-Content /proc/self/status | Select-String '^CapEff:').Line
    CheckpointError = Get-ErrorSummary `$checkpointErrors; RestoreError = Get-ErrorSummary `$restoreErrors
    Support = @(Test-CheckpointSupport | Select-Object Name, Available, Detail); Quiet = Test-CheckpointSupport -Quiet
} | ConvertTo-Json -Depth 4
"@
        Register-TestProcess $Bare.Target
    }

    It 'runs with no capability at all' {
        $Bare.Caps | Should -Match '^CapEff:\s+0+$'
    }

    It 'is refused a checkpoint with InsufficientPrivilege naming CAP_CHECKPOINT_RESTORE and CAP_SYS_PTRACE; the process runs on' {
        $Bare.CheckpointError.Id | Should -Be 'InsufficientPrivilege,CriuPS.Cmdlets.CheckpointProcessCommand'
        $Bare.CheckpointError.Message | Should -Match 'needs CAP_CHECKPOINT_RESTORE \(or CAP_SYS_ADMIN\)'
        $Bare.CheckpointError.Message | Should -Match "uid $Uid \($User\) with no capabilities"
        $Bare.CheckpointError.Action | Should -Match '--ambient-caps=\+sys_ptrace,\+checkpoint_restore pwsh'
        Test-Path "$Work/bare-image" | Should -BeFalse
        Invoke-SelfCheck $Bare.Target (Join-Path $Work 'bare/selfcheck.log') | Should -Match '^OK'
    }

    It 'is refused a restore of their own image with InsufficientPrivilege naming CAP_CHECKPOINT_RESTORE' {
        $Bare.RestoreError.Id | Should -Be 'InsufficientPrivilege,CriuPS.Cmdlets.RestoreProcessCommand'
        $Bare.RestoreError.Target | Should -Be $OwnImage
        $Bare.RestoreError.Message | Should -Match 'clone3 with set_tid.*needs CAP_CHECKPOINT_RESTORE'
    }

    It 'sees in Test-CheckpointSupport what is missing and what each prevents' {
        $support = @{}
        foreach ($item in $Bare.Support) { $support[$item.Name] = $item }
        foreach ($name in 'CAP_CHECKPOINT_RESTORE', 'CAP_SYS_PTRACE', 'Clone3SetTid', 'Root') { $support[$name].Available | Should -BeFalse -Because $name }
        $support['CAP_CHECKPOINT_RESTORE'].Detail | Should -Match 'with no capabilities'
        $support['YamaPtraceScope'].Available | Should -Be (-not (Test-Path /proc/sys/kernel/yama/ptrace_scope) -or (Get-Content /proc/sys/kernel/yama/ptrace_scope) -eq '0')
        $Bare.Quiet | Should -BeFalse
    }
}

Describe 'A user whose dotnet host carries the capabilities as file capabilities' {
    BeforeAll {
        $script:Filecaps = Invoke-AsUser -FileCapabilities @"
`$target = Start-OwnTarget '$Work/filecaps'
`$image = Checkpoint-Process -Id `$target -ImagePath '$Work/filecaps-image' -ErrorVariable checkpointErrors -ErrorAction SilentlyContinue
Wait-Gone `$target
`$restored = if (`$image) { Restore-Process -ImagePath '$Work/filecaps-image' -ErrorVariable restoreErrors -ErrorAction SilentlyContinue }
[pscustomobject]@{
    Target = `$target; Restored = `$restored.Id; Ambient = (Get-Content /proc/self/status | Select-String '^CapAmb:').Line
    CheckpointError = Get-ErrorSummary `$checkpointErrors; RestoreError = Get-ErrorSummary `$restoreErrors
} | ConvertTo-Json -Depth 4
"@
        Register-TestProcess $Filecaps.Target
    }

    It 'restores their process, whose host is given the capabilities that programs do not inherit' {
        $Filecaps.Ambient | Should -Match '^CapAmb:\s+0+$' -Because 'file capabilities are not ambient'
        $Filecaps.CheckpointError | Should -BeNullOrEmpty
        $Filecaps.RestoreError | Should -BeNullOrEmpty
        $Filecaps.Restored | Should -Be $Filecaps.Target
        Invoke-SelfCheck $Filecaps.Target (Join-Path $Work 'filecaps/selfcheck.log') | Should -Match '^OK'
        # Restored with the capabilities it had, none: the session's that its host borrowed are gone.
        (Get-Content "/proc/$($Filecaps.Target)/status" | Select-String '^CapPrm:').Line | Should -Match '^CapPrm:\s+0+$'
    }
}
