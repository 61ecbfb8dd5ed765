# Pseudo-terminals inside the tree: a pair whose master the tree holds is saved and restored with it, both ends, the
# controlling terminal of its session, its foreground group, settings, window size, packet mode, lock state and the
# bytes queued each way; no -ShellJob is needed. Proven on a C target that checks itself (Tests/Targets/ptys.c), on
# tmux and on screen. A terminal whose master is outside the tree stays a shell job's (ShellJob.Tests.ps1).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Ptys = Get-TestTarget 'ptys'
    $script:Checkpoint = 'CriuPS.Cmdlets.CheckpointProcessCommand'

    # Starts the ptys target in a work directory of its own; returns its root, log and the index of its terminal.
    function Start-PtysTarget([string]$Name) {
        $work = Join-Path $TestDrive $Name
        $target = Start-TestTarget -Program $Ptys -Arguments $work -WorkDirectory $work
        $log = Join-Path $work 'ptys.log'
        $verdict = Invoke-SelfCheck $target $log
        $verdict | Should -Match "^OK index=\d+ pid=$target$"
        [pscustomobject]@{ Root = $target; Log = $log; Index = [int]($verdict -replace '^OK index=(\d+).*', '$1'); Layout = @(Get-ProcessTreeLayout $target) }
    }

    function Wait-TreeGone($Layout) {
        foreach ($line in $Layout) {
            $id = [int]$line.Split(' ')[0]
            Wait-Until { -not (Test-ProcessAlive $id) } "process $id of the tree to end"
        }
    }
}

Describe 'A pseudo-terminal pair inside the tree' {
    AfterEach { Stop-TestProcesses }

    It 'is saved without -ShellJob: both ends, /dev/tty, the session and foreground group, settings and the bytes queued each way' {
        $t = Start-PtysTarget 'saved'
        $image = Checkpoint-Process -Id $t.Root -ImagePath (Join-Path $TestDrive 'image-saved')
        Wait-TreeGone $t.Layout
        $image.ProcessCount | Should -Be 3
        $session, $foreground = $t.Layout[1..2] | ForEach-Object { [int]$_.Split(' ')[0] }

        $files = $image.Processes | ForEach-Object { $_.Files } | Where-Object Type -EQ 'TTY'
        @($files.Target | Sort-Object -Unique) | Should -Be @('/dev/ptmx', "/dev/pts/$($t.Index)", '/dev/tty')
        $infos = @((Import-CheckpointImageFile (Join-Path $image.Path 'tty-info.img')).Entries)
        $master = $infos | Where-Object id -EQ (2 * $t.Index + 1)
        $slave = $infos | Where-Object id -EQ (2 * $t.Index)
        $master.packet_mode | Should -BeTrue
        $slave.exclusive | Should -BeTrue
        $master.locked | Should -BeFalse
        $master.sid, $slave.sid | Should -Be @($session, $session)
        $master.pgrp, $slave.pgrp | Should -Be @($foreground, $foreground)
        $slave.winsize.ws_row, $slave.winsize.ws_col | Should -Be @(33, 111)
        $slave.termios.c_cc[0] | Should -Be 7 -Because 'VINTR is ^G'
        @($infos | Where-Object { $_.type -eq 'PTY' -and $_.locked }).Count | Should -Be 1 -Because 'the second pair is locked'
        ($infos | Where-Object type -EQ 'CTTY').sid | Should -Be $session

        $queued = @((Import-CheckpointImageFile (Join-Path $image.Path 'tty-data.img')).Entries)
        $text = @{}
        foreach ($entry in $queued) { $text[[int]$entry.tty_id] = [Text.Encoding]::ASCII.GetString([Convert]::FromBase64String($entry.data)) }
        $text[2 * $t.Index] | Should -Be 'queued-for-slave'
        $text[2 * $t.Index + 1] | Should -Be 'queued-for-master'
    }

    It 'is restored with the same index, session, groups and controlling terminal, and everything still works' {
        $t = Start-PtysTarget 'restored'
        $image = Checkpoint-Process -Id $t.Root -ImagePath (Join-Path $TestDrive 'image-restored')
        Wait-TreeGone $t.Layout

        Restore-Process $image.Path | Out-Null
        $t.Layout | ForEach-Object { Register-TestProcess ([int]$_.Split(' ')[0]) }
        (Get-ProcessTreeLayout $t.Root | Select-Object -Skip 1) | Should -Be ($t.Layout | Select-Object -Skip 1)
        $session = [int]$t.Layout[1].Split(' ')[0]
        (Get-Item "/proc/$session/fd/0").LinkTarget | Should -Be "/dev/pts/$($t.Index)"
        Invoke-SelfCheck $t.Root $t.Log | Should -Be "OK index=$($t.Index) pid=$($t.Root)"
        # Each check queues bytes again: a second checkpoint of the restored tree saves and restores them too.
        $again = Checkpoint-Process -Id $t.Root -ImagePath (Join-Path $TestDrive 'image-restored-again')
        Wait-TreeGone $t.Layout
        Restore-Process $again.Path -Detach | Out-Null
        Invoke-SelfCheck $t.Root $t.Log | Should -Be "OK index=$($t.Index) pid=$($t.Root)"
    }

    It 'keeps its queued bytes with -LeaveRunning, and the image restores' {
        $t = Start-PtysTarget 'leave'
        $image = Checkpoint-Process -Id $t.Root -ImagePath (Join-Path $TestDrive 'image-leave') -LeaveRunning
        Invoke-SelfCheck $t.Root $t.Log | Should -Be "OK index=$($t.Index) pid=$($t.Root)" -Because 'the bytes the dump read were put back'
        Stop-TestProcesses
        Restore-Process $image.Path | Out-Null
        $t.Layout | ForEach-Object { Register-TestProcess ([int]$_.Split(' ')[0]) }
        Invoke-SelfCheck $t.Root $t.Log | Should -Be "OK index=$($t.Index) pid=$($t.Root)"
    }

    It 'keeps its queued bytes when the dump fails after reading them' {
        $t = Start-PtysTarget 'failed'
        $env:CRIUPS_FAIL_AT = 'before-kill'
        try {
            Checkpoint-Process -Id $t.Root -ImagePath (Join-Path $TestDrive 'image-failed') -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }
        finally { $env:CRIUPS_FAIL_AT = $null }
        $errors[0].FullyQualifiedErrorId | Should -Be "DumpFailed,$Checkpoint"
        if ($errors[0].ErrorDetails.Message -match 'log: (\S+)\)$') { Remove-Item $Matches[1] }
        Invoke-SelfCheck $t.Root $t.Log | Should -Be "OK index=$($t.Index) pid=$($t.Root)"
    }

    It 'is not restored while another terminal has its index (TerminalInUse), and is once that one is gone' {
        $t = Start-PtysTarget 'inuse'
        $image = Checkpoint-Process -Id $t.Root -ImagePath (Join-Path $TestDrive 'image-inuse')
        Wait-TreeGone $t.Layout
        # Another program opens pseudo-terminals until it holds the index.
        $holderWork = Join-Path $TestDrive 'holder'
        $script = "import os, sys, time`nheld = []`nwhile True:`n    m, s = os.openpty(); held.append((m, s)); n = int(os.ttyname(s).rsplit('/', 1)[1])`n    if n >= $($t.Index): break`nif n != $($t.Index): sys.exit(1)`nopen('ready', 'w').write(str(os.getpid()))`nwhile True: time.sleep(60)`n"
        $holder = Start-TestTarget -Program (Get-Command python3 -CommandType Application)[0].Source -Arguments '-c', $script -WorkDirectory $holderWork

        Restore-Process $image.Path -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be 'TerminalInUse,CriuPS.Cmdlets.RestoreProcessCommand'
        $errors[0].Exception.Message | Should -Match "/dev/pts/$($t.Index)"
        $t.Layout | ForEach-Object { Test-ProcessAlive ([int]$_.Split(' ')[0]) | Should -BeFalse }

        & kill -s KILL $holder
        Wait-Until { -not (Test-ProcessAlive $holder) } 'the holder to end'
        Restore-Process $image.Path | Out-Null
        $t.Layout | ForEach-Object { Register-TestProcess ([int]$_.Split(' ')[0]) }
        Invoke-SelfCheck $t.Root $t.Log | Should -Be "OK index=$($t.Index) pid=$($t.Root)"
    }
}

Describe 'Pseudo-terminals that cannot be saved' {
    AfterEach { Stop-TestProcesses }

    BeforeAll {
        $script:Python = (Get-Command python3 -CommandType Application)[0].Source

        # Checkpoints a python3 program with -ShellJob (so that a session led outside the tree is no reason to refuse it)
        # and expects the refusal named, the program running on as before.
        function Assert-Refused([string]$Name, [string]$Program, [string]$Pattern) {
            $target = Start-TestTarget -Program $Python -Arguments '-c', $Program -WorkDirectory (Join-Path $TestDrive $Name)
            Register-TestProcess ([int](Get-Content "/proc/$target/stat" -Raw).Split(') ')[1].Split(' ')[1])
            Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive "image-$Name") -ShellJob -ErrorVariable errors -ErrorAction SilentlyContinue |
                Should -BeNullOrEmpty
            $errors[0].FullyQualifiedErrorId | Should -Be "Unsupported,$Checkpoint"
            $errors[0].Exception.Message | Should -Match $Pattern
            Test-ProcessAlive $target | Should -BeTrue
            (Get-Content "/proc/$target/stat" -Raw).Split(') ')[1][0] | Should -Not -Be 'T' -Because 'the tree was released'
        }
    }

    It 'refuses a slave that was hung up (its master closed), with the tree released' {
        $program = "import os, time`nm, s = os.openpty()`nos.close(m)`nopen('ready', 'w').write(str(os.getpid()))`nwhile True: time.sleep(60)`n"
        Assert-Refused 'hungup' $program 'terminal /dev/pts/\d+ \(deleted\), which was hung up'
    }

    It 'refuses a master whose slave controls a session led outside the tree' {
        # The parent (launch made it a session leader) leads its session on the slave and stays outside; its child,
        # checkpointed, holds the master.
        $program = "import os, fcntl, termios, time`nm, s = os.openpty()`nfcntl.ioctl(s, termios.TIOCSCTTY, 0)`n" +
            "child = os.fork()`nif child == 0:`n    while True: time.sleep(60)`nopen('ready', 'w').write(str(child))`nwhile True: time.sleep(60)`n"
        Assert-Refused 'outside' $program 'holds the master of /dev/pts/\d+ .*whose leader is not in the tree'
    }
}

Describe 'Terminal multiplexers' {
    AfterEach { Stop-TestProcesses }

    It 'restores a tmux server: tmux ls answers and keys sent reach each window, whose output tmux captures' {
        $socket = Join-Path $TestDrive 'tmux.sock'
        $tmux = @('-S', $socket, '-f', '/dev/null')
        # Each window's shell answers through /dev/tty, which it opened on its own terminal: two sessions, two /dev/tty.
        $loop = 'exec 9<>/dev/tty; while read line; do echo "got:$line" >&9; done'
        & tmux @tmux new-session -d -s work -x 100 -y 30 $loop
        & tmux @tmux new-window -d -t work $loop
        $server = [int](& tmux @tmux display-message -p '#{pid}')
        Register-TestProcess $server
        $windows = 'work:0', 'work:1'
        $paneTtys = $windows | ForEach-Object { & tmux @tmux display-message -p -t $_ '#{pane_tty}' }
        $paneTtys | Select-Object -Unique | Should -HaveCount 2
        $layout = @(Get-ProcessTreeLayout $server)
        $layout.Count | Should -Be 3
        foreach ($w in $windows) {
            & tmux @tmux send-keys -t $w "before-$w" Enter
            Wait-Until { (& tmux @tmux capture-pane -p -t $w) -contains "got:before-$w" } "window $w to answer before the checkpoint"
        }

        $image = Checkpoint-Process -Id $server -ImagePath (Join-Path $TestDrive 'image-tmux')
        Wait-TreeGone $layout
        $infos = @((Import-CheckpointImageFile (Join-Path $image.Path 'tty-info.img')).Entries)
        @($infos | Where-Object type -EQ 'CTTY').sid | Sort-Object | Should -Be ($layout[1..2] | ForEach-Object { [int]$_.Split(' ')[0] } | Sort-Object)
        & tmux @tmux ls 2>$null
        $LASTEXITCODE | Should -Not -Be 0 -Because 'no server answers while it is checkpointed'

        Restore-Process $image.Path -Detach | Out-Null
        $layout | ForEach-Object { Register-TestProcess ([int]$_.Split(' ')[0]) }
        & tmux @tmux ls | Should -Match '^work: 2 windows'
        $windows | ForEach-Object { & tmux @tmux display-message -p -t $_ '#{pane_tty}' } | Should -Be $paneTtys
        foreach ($w in $windows) {
            & tmux @tmux send-keys -t $w "after-$w" Enter
            Wait-Until { (& tmux @tmux capture-pane -p -t $w) -contains "got:after-$w" } "window $w to answer after the restore"
            (& tmux @tmux capture-pane -p -t $w) -contains "got:before-$w" | Should -BeTrue -Because 'the screen tmux kept is back'
        }
    }

    It 'restores a detached screen session: screen -ls lists it and stuffed input reaches the window, as a hardcopy shows' {
        $screens = Join-Path $TestDrive 'screens'
        New-Item -ItemType Directory $screens | Out-Null
        & chmod 700 $screens
        $env:SCREENDIR = $screens
        try {
            & screen -dmS work sh -c 'while read line; do echo "got:$line"; done'
            Wait-Until { @(Get-ChildItem $screens).Count -eq 1 } 'the screen session to start'
            $server = [int](@(Get-ChildItem $screens)[0].Name -split '\.')[0]
            Register-TestProcess $server
            # The socket appears before the server has forked its window's shell (CI once saw the server alone).
            Wait-Until { @(Get-ProcessTreeLayout $server).Count -eq 2 } 'the screen server and its window''s shell'
            $layout = @(Get-ProcessTreeLayout $server)
            $layout.Count | Should -Be 2
            $copy = Join-Path $TestDrive 'hardcopy'
            function Get-Window { Remove-Item $copy -ErrorAction Ignore; & screen -S work -X hardcopy $copy; Wait-Until { Test-Path $copy } 'a hardcopy'; Get-Content $copy }
            & screen -S work -X stuff "before`n"
            Wait-Until { (Get-Window) -contains 'got:before' } 'the window to answer before the checkpoint'

            $image = Checkpoint-Process -Id $server -ImagePath (Join-Path $TestDrive 'image-screen')
            Wait-TreeGone $layout

            Restore-Process $image.Path -Detach | Out-Null
            $layout | ForEach-Object { Register-TestProcess ([int]$_.Split(' ')[0]) }
            (& screen -ls) -join "`n" | Should -Match "$server\.work\s.*\(Detached\)"
            & screen -S work -X stuff "after`n"
            Wait-Until { (Get-Window) -contains 'got:after' } 'the window to answer after the restore'
        }
        finally { $env:SCREENDIR = $null }
    }
}
