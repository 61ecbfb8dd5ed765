# End to end: the console and a virtual console held open (saved without -ShellJob and opened again by their path,
# as CRIU does; refused, naming the device, where another device answers to the name), seccomp filters installed with
# SECCOMP_FILTER_FLAG_TSYNC (every thread filtered again, checked by Tests/Targets/seccompmodes.c in each thread), and
# a thread in strict seccomp mode, which enters it again as the last call CriuPS injects in it.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source

    # A python3 process holding /dev/tty1 at fd 3 (read-write) and /dev/console at fd 4 (write-only), neither its
    # controlling terminal.
    function Start-ConsoleHolder([string]$Work) {
        $script = "import os, time; os.open('/dev/tty1', os.O_RDWR | os.O_NOCTTY); os.open('/dev/console', os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK); " +
            "open('ready', 'w').write(str(os.getpid()))`nwhile True: time.sleep(1)"
        Start-TestTarget -Program $Python -Arguments '-c', $script -WorkDirectory $Work
    }

    function Get-FdFlags([int]$Id, [int]$Fd) { ((Get-Content "/proc/$Id/fdinfo/$Fd") -match '^flags:')[0] }

    $script:Consoles = (Test-Path /dev/tty1) -and (Test-Path /dev/console)
}

Describe 'Consoles and seccomp modes' {
    AfterEach { Stop-TestProcesses }

    It 'restores the console and a virtual console opened by a process, on the same devices, without -ShellJob' {
        if (-not $Consoles) { Set-ItResult -Skipped -Because 'this machine has no /dev/tty1 or /dev/console (a container)'; return }
        $target = Start-ConsoleHolder (Join-Path $TestDrive 'console')
        $flags = (Get-FdFlags $target 3), (Get-FdFlags $target 4)

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'console-image')
        @($image.Processes.Files | Where-Object Type -EQ 'TTY').Target | Should -Be '/dev/tty1', '/dev/console'
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'

        Restore-Process $image.Path | Out-Null
        (Get-Item "/proc/$target/fd/3").LinkTarget | Should -Be '/dev/tty1'
        (Get-Item "/proc/$target/fd/4").LinkTarget | Should -Be '/dev/console'
        ((Get-Content "/proc/$target/stat") -split ' ')[6] | Should -Be '0' -Because 'neither became its controlling terminal'
        (Get-FdFlags $target 3), (Get-FdFlags $target 4) | Should -Be $flags
    }

    It 'refuses to restore a virtual console where another device answers to its name, naming it' {
        if (-not $Consoles) { Set-ItResult -Skipped -Because 'this machine has no /dev/tty1 or /dev/console (a container)'; return }
        $target = Start-ConsoleHolder (Join-Path $TestDrive 'console-elsewhere')
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'console-elsewhere-image')
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'

        # A restore in a mount namespace of its own where /dev/null is mounted over /dev/tty1.
        $pwsh = if ((Split-Path -Leaf ([Environment]::ProcessPath)) -eq 'pwsh') { [Environment]::ProcessPath } else { Join-Path $PSHOME 'pwsh' }
        $module = Join-Path (Get-RepositoryRoot) 'out/CriuPS/CriuPS.psd1'
        $restore = Join-Path $TestDrive 'restore.ps1'
        Set-Content $restore "Import-Module '$module'; try { Restore-Process '$($image.Path)' -ErrorAction Stop | Out-Null; 'restored' } catch { `$_.FullyQualifiedErrorId; `$_.Exception.Message }"
        $output = & unshare --mount --propagation private sh -c "mount --bind /dev/null /dev/tty1 && exec '$pwsh' -NoProfile -NonInteractive -File '$restore'" 2>&1
        ($output -join ' ') | Should -Match 'ImageIncompatible,CriuPS.Cmdlets.RestoreProcessCommand'
        ($output -join ' ') | Should -Match '/dev/tty1 open \(a virtual console\), and /dev/tty1 here is another device'
        Test-ProcessAlive $target | Should -BeFalse -Because 'nothing was left running'
    }

    It 'restores a seccomp filter installed with TSYNC, which filters every thread again' {
        $work = Join-Path $TestDrive 'tsync'
        $log = Join-Path $work 'seccompmodes.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'seccompmodes') -Arguments 'tsync', $work -WorkDirectory $work
        $filters = @(Get-ChildItem "/proc/$target/task" | ForEach-Object { ((Get-Content "$($_.FullName)/status") -match '^Seccomp_filters:')[0] })
        $filters | Should -Be (@('Seccomp_filters:	1') * 3)

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'tsync-image')
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        Restore-Process $image.Path | Out-Null

        @(Get-ChildItem "/proc/$target/task" | ForEach-Object { ((Get-Content "$($_.FullName)/status") -match '^Seccomp_filters:')[0] }) | Should -Be $filters
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'getppid fails with EPERM in each of the three threads'
    }

    It 'restores a thread in strict seccomp mode, which enters it again last: it still reads and writes, and a forbidden call kills it' {
        $work = Join-Path $TestDrive 'strict'
        $log = Join-Path $work 'seccompmodes.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'seccompmodes') -Arguments 'strict', $work -WorkDirectory $work
        $modes = @(Get-ChildItem "/proc/$target/task" | Sort-Object { [int]$_.Name } | ForEach-Object { ((Get-Content "$($_.FullName)/status") -match '^Seccomp:')[0] })
        $modes | Should -Be "Seccomp:`t0", "Seccomp:`t1"

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'strict-image')
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        Restore-Process $image.Path | Out-Null

        @(Get-ChildItem "/proc/$target/task" | Sort-Object { [int]$_.Name } | ForEach-Object { ((Get-Content "$($_.FullName)/status") -match '^Seccomp:')[0] }) | Should -Be $modes
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'the strict thread echoes a byte through read and write, and getpid kills it'
        Test-ProcessAlive $target | Should -BeTrue -Because 'strict mode kills the thread alone'
    }
}
