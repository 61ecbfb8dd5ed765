# Background checkpoints (Checkpoint-Process -LeaveRunning -Background): the process is frozen only to save all but
# its memory and to write-protect it, then runs while its memory is copied; the pages it writes meanwhile are saved
# first. The target, bgcounter, rewrites its memory without pause and checks every page against the sweep it is in:
# an image that is not its memory at one instant fails those checks once restored. Checked once by hand, with the
# write protection taken out of a build (a plain copy while the process runs): the restored process answered
# "BAD sweep 4542: page 11249 holds 4541/4830" at once (a page 289 sweeps newer than its neighbours, and torn).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Module = (Get-Module CriuPS).Path
    $script:Pwsh = Join-Path $PSHOME 'pwsh'
    $script:Checkpoint = 'CriuPS.Cmdlets.CheckpointProcessCommand'

    # Starts bgcounter sweeping MIB mebibytes; returns its pid and log.
    function Start-Counter([string]$Name, [int]$MiB = 64) {
        $work = Join-Path $TestDrive $Name
        $target = Start-TestTarget -Program (Get-TestTarget 'bgcounter') -Arguments $MiB, $work -WorkDirectory $work
        [pscustomobject]@{ Id = $target; Log = (Join-Path $work 'bgcounter.log') }
    }

    # The counter's answer to a self-check, as numbers; fails on anything but OK.
    function Get-Counter($Target) {
        $line = Invoke-SelfCheck $Target.Id $Target.Log
        $line | Should -Match "^OK sweeps=\d+ stamps=\d+ pid=$($Target.Id)$"
        $null = $line -match 'sweeps=(\d+) stamps=(\d+)'
        [pscustomobject]@{ Sweeps = [long]$Matches[1]; Stamps = [long]$Matches[2] }
    }

    # The counter must go on sweeping (no thread left waiting on a write fault) and pass every check of two whole
    # sweeps, which visit every page twice.
    function Assert-CounterSweepsOn($Target) {
        $first = Get-Counter $Target
        Wait-Until { (Get-Counter $Target).Sweeps -ge $first.Sweeps + 2 } "process $($Target.Id) to sweep its memory twice more" -TimeoutSeconds 60
    }

    # A -Background checkpoint in a PowerShell of its own that dies at $DieAt (CRIUPS_DIE_AT); returns its exit status.
    function Invoke-DyingBackgroundCheckpoint([int]$Id, [string]$ImagePath, [string]$DieAt) {
        $command = Get-DyingCheckpointCommand $Module "-Id $Id -ImagePath '$ImagePath' -Force -LeaveRunning -Background"
        $errors = Join-Path $TestDrive 'dying.err'
        $env:CRIUPS_DIE_AT = $DieAt
        try {
            $process = Start-Process $Pwsh -ArgumentList '-NoProfile', '-NonInteractive', '-Command', $command -PassThru `
                -RedirectStandardOutput '/dev/null' -RedirectStandardError $errors
        }
        finally { $env:CRIUPS_DIE_AT = $null }
        if (-not $process.WaitForExit(120000)) { $process.Kill(); throw "the checkpoint dying at $DieAt did not end" }
        Get-CheckpointDeath $process $errors
    }
}

Describe 'Checkpoint-Process -LeaveRunning -Background' {
    AfterEach { Stop-TestProcesses }

    It 'saves the memory of the freeze instant while the process rewrites it, and the restored process finds exactly that instant' {
        $target = Start-Counter 'consistent' 128
        $before = Get-Counter $target
        $image = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'consistent-image') -LeaveRunning -Background
        $image.Pages | Should -BeGreaterOrEqual (128 * 256)
        $log = Get-Content (Join-Path $image.Path 'dump.log') -Raw
        # The process wrote pages the copy had not reached: the handler saved them first (else this proves nothing).
        $log | Should -Match 'background copy of \d+: [1-9]\d* write fault\(s\) served, [1-9]\d* page\(s\) saved before the process wrote them'
        # Its memory was protected while it ran, ahead of the freeze; the freeze protected again only what was not then.
        $log | Should -Match 'background copy of \d+: armed ahead of the freeze: [1-9]\d* area\(s\) registered, pages protected by pass: [1-9]\d*'
        $log | Should -Match 'area\(s\) write-protected \(\d+ page\(s\) protected at the freeze\)'
        # Its shared page and its written private file page cannot be protected: copied while frozen.
        $log | Should -Match 'page\(s\) of [1-9]\d* other area\(s\) copied while frozen'
        # No walk over every page while frozen: maps at the freeze, VmFlags from smaps read ahead and confirmed after.
        $log | Should -Match "areas of $($target.Id): \d+ read from maps at the freeze, their VmFlags from smaps read ahead"
        $log | Should -Match "areas of $($target.Id): VmFlags read again after the freeze are those read ahead of it"
        # The checkpoint's steps with its own in between: armed ahead, the tree resumed, then the copy (DumpSteps.Checkpoint).
        Get-LoggedSteps (Join-Path $image.Path 'dump.log') 'dump' | Should -Be 'engine ready', 'target', 'tree', 'image',
            'background copy armed ahead', 'freeze', 'attach', 'process state', 'memory', 'terminals and cpu', 'resume',
            'background copy', 'images', 'commit', 'write tracking ended', 'end of the tree'
        (Get-Counter $target).Stamps | Should -BeGreaterThan $before.Stamps -Because 'the process ran on'
        Assert-CounterSweepsOn $target

        Send-Signal $target.Id 'KILL'
        Wait-Until { -not (Test-ProcessAlive $target.Id) } "process $($target.Id) to end"
        $restored = Restore-Process $image
        Register-TestProcess $restored.Id
        $restored.Id | Should -Be $target.Id
        Assert-CounterSweepsOn $target
    }

    It 'keeps the freeze short whatever the memory size: a frozen checkpoint of the same process is frozen longer' {
        $target = Start-Counter 'short' 256
        # Warm both paths first: the first operation of a session is JIT-bound.
        Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'short-warm') -LeaveRunning -Background | Out-Null
        $frozen = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'short-frozen') -LeaveRunning
        $background = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'short-background') -LeaveRunning -Background
        $background.FrozenTime | Should -BeLessThan $frozen.FrozenTime -Because "256 MiB are copied while frozen in one ($($frozen.FrozenTime.TotalMilliseconds) ms), not in the other ($($background.FrozenTime.TotalMilliseconds) ms)"
        Assert-CounterSweepsOn $target
    }

    It 'leaves the process running as before when the tool dies while it protects the running process ahead of the freeze, while a write waits in its handler, or mid-copy' {
        $target = Start-Counter 'dying' 64
        $before = (Get-Content "/proc/$($target.Id)/status" | Where-Object { $_ -like 'SigBlk:*' })
        # arm:3: between two of the areas it protects while the process runs, ahead of the freeze.
        foreach ($instant in 'arm:3', 'fault:20', 'copy:2') {
            Invoke-DyingBackgroundCheckpoint $target.Id (Join-Path $TestDrive 'dying-image') $instant | Should -Be 'SIGKILL' -Because "the checkpoint must die at $instant"
            # Closing the tool's userfaultfd (its only reference) lifted every protection and woke the waiting write.
            (Get-Content "/proc/$($target.Id)/status" | Where-Object { $_ -like 'TracerPid:*' }) | Should -Match '\s0$'
            (Get-Content "/proc/$($target.Id)/status" | Where-Object { $_ -like 'SigBlk:*' }) | Should -Be $before
            Assert-CounterSweepsOn $target
        }
        # Both deaths came after the release, which removed the injection area: the next checkpoint finds none.
        $image = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'dying-image') -Force -LeaveRunning -Background
        Get-Content (Join-Path $image.Path 'dump.log') -Raw | Should -Not -Match 'removed the injection area'
        Assert-CounterSweepsOn $target
    }

    It 'fails, and leaves the process running as before, when the process changes the flags of an area (madvise) across the freeze' {
        # bgflags sets MADV_DONTFORK over one more of its 8192 one-page areas every millisecond: the layout stays the
        # same, the flags read ahead of the freeze are not those read after it.
        $work = Join-Path $TestDrive 'flags'
        $id = Start-TestTarget -Program (Get-TestTarget 'bgflags') -Arguments 8192, $work -WorkDirectory $work
        $log = Join-Path $work 'bgflags.log'
        Invoke-SelfCheck $id $log | Should -Match "^OK changed=[1-9]\d* pid=$id$"
        Checkpoint-Process -Id $id -ImagePath (Join-Path $TestDrive 'flags-image') -LeaveRunning -Background -ErrorVariable errors -ErrorAction SilentlyContinue |
            Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be "DumpFailed,$Checkpoint"
        $errors[0].Exception.Message | Should -Match "its area .* shows the flags '[^']*\bdc\b[^']*' where it showed '[^']*' ahead of the freeze \(madvise"
        Test-Path (Join-Path $TestDrive 'flags-image') | Should -BeFalse
        (Get-Content "/proc/$id/status" | Where-Object { $_ -like 'TracerPid:*' }) | Should -Match '\s0$'
        $changed = [int]((Invoke-SelfCheck $id $log) -replace '^OK changed=(\d+) .*$', '$1')
        Wait-Until { (Invoke-SelfCheck $id $log) -match "^OK changed=(\d+) pid=$id$" -and [int]$Matches[1] -gt $changed } "process $id to change more areas, every one intact"
    }

    It 'is refused before anything is frozen without -LeaveRunning, and with -PreDump' {
        $target = Start-Counter 'refused' 4
        foreach ($arguments in @{}, @{ LeaveRunning = $true; PreDump = $true }) {
            Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'refused-image') -Background @arguments -ErrorVariable errors -ErrorAction SilentlyContinue |
                Should -BeNullOrEmpty
            $errors[0].FullyQualifiedErrorId | Should -Be "Unsupported,$Checkpoint"
            $errors[0].Exception.Message | Should -Match 'cannot be checkpointed in the background this way'
        }
        Test-Path (Join-Path $TestDrive 'refused-image') | Should -BeFalse
        Assert-CounterSweepsOn $target
    }
}
