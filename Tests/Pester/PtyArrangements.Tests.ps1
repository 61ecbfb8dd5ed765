# End to end: pseudo-terminals in arrangements Terminals.Tests.ps1's target does not make (Tests/Targets/ptyarrangements.c,
# after CRIU's pty01-pty03, tty02, tty03): two descriptions of one slave, a master whose slave was never opened, a master shared
# with a child, a session whose controlling terminal only /dev/tty holds, a slave held by one session leader and
# controlling another.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Arrangements = Get-TestTarget 'ptyarrangements'
}

Describe 'Pseudo-terminals in more arrangements' {
    AfterEach { Stop-TestProcesses }

    It 'restores <What>' -ForEach @(
        @{ What = 'a master with two open descriptions of its slave, each with its own flags'; Mode = 'twoslaves'; CheckBefore = $true }
        @{ What = 'a master whose slave was never opened'; Mode = 'noslave'; CheckBefore = $true }
        @{ What = 'a master shared with a child (one description) with bytes waiting on it'; Mode = 'forked'; CheckBefore = $false }
        @{ What = 'a session whose controlling terminal only /dev/tty holds, with bytes written through it'; Mode = 'ttyonly'; CheckBefore = $false }
        @{ What = 'a slave held by a session leader it does not control, controlling another session that holds none of it'; Mode = 'othersession'; CheckBefore = $true }
    ) {
        $work = Join-Path $TestDrive $Mode
        $log = Join-Path $work 'ptyarrangements.log'
        $target = Start-TestTarget -Program $Arrangements -Arguments $work, $Mode -WorkDirectory $work
        # Checks that read what is queued run once, after the restore.
        if ($CheckBefore) { Invoke-SelfCheck $target $log | Should -Be "OK $Mode pid=$target" }
        $layout = @(Get-ProcessTreeLayout $target)
        $pids = $layout | ForEach-Object { [int]$_.Split(' ')[0] }

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive "image-$Mode")
        foreach ($id in $pids) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id to end" }

        Restore-Process $image.Path | Out-Null
        $pids | ForEach-Object { Register-TestProcess $_ }
        # The root's parent is the restorer now; the rest of the layout stays.
        $shape = { param($lines) $lines | ForEach-Object { $f = $_.Split(' '); if ($f[0] -eq "$target") { $f[1] = 'parent' }; $f -join ' ' } }
        (& $shape @(Get-ProcessTreeLayout $target)) | Should -Be (& $shape $layout) -Because 'the same processes, sessions and groups come back'
        Invoke-SelfCheck $target $log | Should -Be "OK $Mode pid=$target"
    }
}
