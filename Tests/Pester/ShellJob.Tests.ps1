# Shell jobs: a process attached to a terminal is saved only with -ShellJob, and restored (with -ShellJob) onto
# the terminal of the restoring session. `script` from util-linux provides the terminals.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:SelfCheck = Get-TestTarget 'selfcheck'
    $script:Module = Join-Path (Get-RepositoryRoot) 'out/CriuPS/CriuPS.psd1'
}

Describe 'A process on a terminal' {
    BeforeAll {
        $script:Work = Join-Path $TestDrive 'tty'
        $script:Log = Join-Path $Work 'selfcheck.log'
        # script(1) runs the program on a new pseudo-terminal; `exec` makes it the session leader there.
        $script:Target = Start-TestTarget -Program (Get-Command script).Source -WorkDirectory $Work `
            -Arguments '-qfec', "exec $SelfCheck sleep $Work", '/dev/null'
        $script:Image = Join-Path $TestDrive 'tty-image'
    }
    AfterAll { Stop-TestProcesses }

    It 'is refused without -ShellJob, and keeps running' {
        (Get-Item "/proc/$Target/fd/0").LinkTarget | Should -Match '^/dev/pts/\d+$'
        Checkpoint-Process -Id $Target -ImagePath $Image -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be 'ShellJobRequired,CriuPS.Cmdlets.CheckpointProcessCommand'
        $errors[0].Exception.Message | Should -Match 'terminal /dev/pts/\d+'
        Invoke-SelfCheck $Target $Log | Should -Match '^OK'
    }

    It 'is saved with -ShellJob, its terminal descriptors recorded as such' {
        $saved = Checkpoint-Process -Id $Target -ImagePath $Image -ShellJob
        ($saved.Processes[0].Files | Where-Object Fd -LT 3).Type | Should -Be @('TTY', 'TTY', 'TTY')
        Wait-Until { -not (Test-ProcessAlive $Target) } 'the checkpointed process to end'
    }

    It 'is not restored without -ShellJob' {
        Restore-Process $Image -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be 'ShellJobRequired,CriuPS.Cmdlets.RestoreProcessCommand'
        Test-ProcessAlive $Target | Should -BeFalse
    }

    It 'is restored with -ShellJob onto the terminal of the restoring session' {
        # A script file keeps sh (which script(1) uses) out of the quoting. No progress bar: on a terminal that
        # nobody answers, its cursor queries would each wait for a timeout.
        $restore = Join-Path $TestDrive 'restore.ps1'
        @"
`$ProgressPreference = 'SilentlyContinue'
Import-Module '$Module'
Restore-Process -ImagePath '$Image' -ShellJob -Detach -ErrorAction Stop | Out-Null
(Get-Item /proc/$Target/fd/0).LinkTarget -eq (Get-Item /proc/self/fd/0).LinkTarget
"@ | Set-Content $restore
        $output = & script -qfec "$(Join-Path $PSHOME 'pwsh') -NoProfile -NonInteractive -File $restore" /dev/null
        ($output -join "`n") | Should -Match 'True'
        Register-TestProcess $Target
        Invoke-SelfCheck $Target $Log | Should -Match "^OK counter=\d+ pid=$Target$"
    }
}
