# End to end: anonymous-inode files (eventfd, signalfd, timerfd, inotify, epoll) saved and restored with their
# state, and the ones CriuPS cannot save refused before anything is frozen.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:AnonFds = Get-TestTarget 'anonfds'
    $script:Refused = Get-TestTarget 'anonrefused'
}

Describe 'Anonymous-inode files' {
    AfterEach { Stop-TestProcesses }

    It 'restores eventfds, a signalfd, timerfds, inotify watches and nested epolls, each with its state' {
        $work = Join-Path $TestDrive 'anonfds'
        $log = Join-Path $work 'anonfds.log'
        $target = Start-TestTarget -Program $AnonFds -Arguments $work -WorkDirectory $work
        Invoke-SelfCheck $target $log | Should -Match "^OK ticks=\d+ pid=$target$"

        # Nothing queued on the inotify instance: no warning; the process carries on as before.
        $kept = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'anonfds-kept') -LeaveRunning -WarningVariable quiet -WarningAction SilentlyContinue
        $quiet | Should -BeNullOrEmpty
        ($kept.Processes[0].Files | Group-Object Type -NoElement | ForEach-Object { "$($_.Name)=$($_.Count)" }) -join ' ' |
            Should -Match 'EVENTFD=2 .*EVENTPOLL=2 .*INOTIFY=1 .*SIGNALFD=1 .*TIMERFD=3'
        Invoke-SelfCheck $target $log | Should -Match "^OK ticks=\d+ pid=$target$"

        # Ticks of the periodic timer pile up unread, and an inotify event waits unread: it is lost, with a warning.
        Start-Sleep -Milliseconds 1200
        Add-Content (Join-Path $work 'watched-file') 'queued'
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'anonfds-image') -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings | Should -HaveCount 1
        "$($warnings[0])" | Should -Match "fd 10: \d+ bytes of inotify events not yet read are not saved"
        Join-Path $image.Path 'dump.log' | Should -FileContentMatch 'inotify events not yet read'
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'

        $restored = Restore-Process $image.Path
        Register-TestProcess $restored.Id
        $first = Invoke-SelfCheck $target $log
        $first | Should -Match "^OK ticks=\d+ pid=$target$"
        [int]($first -replace '.*ticks=(\d+).*', '$1') | Should -BeGreaterOrEqual 20 -Because 'the ticks unread at the checkpoint are read after the restore'
        Start-Sleep -Milliseconds 200
        Invoke-SelfCheck $target $log | Should -Match "^OK ticks=\d+ pid=$target$" -Because 'the periodic timer keeps ticking'
    }

    It 'says which watched file is missing when it was deleted before the restore' {
        $work = Join-Path $TestDrive 'anonfds-gone'
        $target = Start-TestTarget -Program $AnonFds -Arguments $work -WorkDirectory $work
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'anonfds-gone-image')
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        Remove-Item (Join-Path $work 'watched-file')
        Restore-Process $image.Path -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be 'ImageIncompatible,CriuPS.Cmdlets.RestoreProcessCommand'
        $errors[0].Exception.Message | Should -Match "watched '.*watched-file' with inotify \(wd 3\), and that file cannot be found: it no longer exists"
        Test-ProcessAlive $target | Should -BeFalse
    }

    It 'refuses <What> before freezing, naming the process and fd' -ForEach @(
        @{ What = 'an io_uring instance'; Mode = 'io_uring'; Message = 'fd 3: an io_uring instance, anon_inode:\[io_uring\] \(not supported yet\)' }
    ) {
        $work = Join-Path $TestDrive "refused-$Mode"
        $target = Start-TestTarget -Program $Refused -Arguments $Mode, $work -WorkDirectory $work
        $path = Join-Path $TestDrive "refused-$Mode-image"
        Checkpoint-Process -Id $target -ImagePath $path -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $errors[0].Exception.Message | Should -Match "^Process $target \(anonrefused\) cannot be checkpointed; nothing was frozen:"
        $errors[0].Exception.Message | Should -Match $Message
        Test-Path $path | Should -BeFalse
        $status = Get-Content "/proc/$target/status" -Raw
        $status | Should -Match 'State:\s+S \(sleeping\)' -Because 'the process was never stopped'
        $status | Should -Match 'TracerPid:\s+0\b'
    }
}
