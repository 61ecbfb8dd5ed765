# End to end: what a process sets on its memory areas with madvise and friends, zombies of every shape, and system
# calls that the checkpoint interrupted while they waited, each checked by a self-checking C target.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS

    # Every area of a process with its VmFlags, as "START-END PATH: FLAGS" lines of /proc/PID/smaps, in address order.
    function Get-AreaFlags([int]$Id) {
        $area = $null
        foreach ($line in Get-Content "/proc/$Id/smaps") {
            if ($line -match '^([0-9a-f]+-[0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$') { $area = "$($Matches[1]) $($Matches[2])".TrimEnd() }
            elseif ($line -match '^VmFlags:\s*(.*)$') { "${area}: $($Matches[1].Trim())" }
        }
    }
}

Describe 'madvise state of memory areas' {
    AfterEach { Stop-TestProcesses }

    # Every area of the process is compared, not only the target's own: heap, stack, the program's and libraries'
    # mappings, the vDSO family. No flag needs an exception on Linux 6.18: those the kernel sets by itself follow from
    # what is restored (rd wr ex sh mr mw me ms from the protection and the file's open mode, ac from the mapping
    # being private and writable or once so, de dd io pf on the vDSO family moved into place; "sd", soft-dirty, which
    # the kernel sets on every new area, is not shown by this one).
    It 'keeps the VmFlags of every area identical (<Mode>)' -ForEach @(@{ Mode = 'plain' }, @{ Mode = 'merge-any' }) {
        $work = Join-Path $TestDrive "madvise-$Mode"
        $log = Join-Path $work 'madvise.log'
        $arguments = @($work) + @(if ($Mode -eq 'merge-any') { 'merge-any' })
        $target = Start-TestTarget -Program (Get-TestTarget 'madvise') -Arguments $arguments -WorkDirectory $work
        Invoke-SelfCheck $target $log | Should -Be 'OK areas=20'
        $before = @(Get-AreaFlags $target)

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive "image-madvise-$Mode")
        Wait-Until { -not (Test-ProcessAlive $target) } "process $target to end"
        Restore-Process $image.Path | Out-Null
        Register-TestProcess $target

        $after = @(Get-AreaFlags $target)
        $after.Count | Should -Be $before.Count -Because 'every area is back, no more and no fewer'
        for ($i = 0; $i -lt $before.Count; $i++) { $after[$i] | Should -Be $before[$i] -Because 'each area keeps its VmFlags' }
        Invoke-SelfCheck $target $log | Should -Be 'OK areas=20'
        Invoke-SelfCheck $target $log | Should -Be 'OK areas=20'
    }
}

Describe 'Zombies' {
    AfterEach { Stop-TestProcesses }

    It 'keeps every zombie with its PID, parent, group, session and exit status' {
        $work = Join-Path $TestDrive 'zombies'
        $log = Join-Path $work 'zombies.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'zombies') -Arguments $work -WorkDirectory $work
        Invoke-SelfCheck $target $log | Should -Be 'OK zombies=10'
        $layout = Get-ProcessTreeLayout $target
        $pids = $layout | ForEach-Object { [int]$_.Split(' ')[0] }

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-zombies')
        ($image.Processes | Where-Object State -EQ 'zombie').Count | Should -Be 10
        foreach ($id in $pids) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id of the tree to end" }

        Restore-Process $image.Path | Out-Null
        $pids | ForEach-Object { Register-TestProcess $_ }
        (Get-ProcessTreeLayout $target | Select-Object -Skip 1) | Should -Be ($layout | Select-Object -Skip 1) -Because 'every process is back with its parent, group, session and state'
        Invoke-SelfCheck $target $log | Should -Be 'OK zombies=10'
        Invoke-SelfCheck $target $log 'TERM' | Should -Be 'EXIT OK'
    }
}

Describe 'System calls interrupted by the checkpoint' {
    AfterEach { Stop-TestProcesses }

    It 'resumes every waiting call for the time it had left, counted from the restore' {
        $work = Join-Path $TestDrive 'interrupted'
        $log = Join-Path $work 'interrupted.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'interrupted') -Arguments $work, 8 -WorkDirectory $work
        Start-Sleep -Seconds 1

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-interrupted')
        # Saved for the calls whose deadline only the kernel's restart block held (poll, both nanosleeps, relative
        # clock_nanosleep, FUTEX_WAIT), for the epoll waits and for the ticker's nanosleep: 8 of the 14 threads.
        $timesLeft = @(Get-ChildItem $image.Path -Filter 'core-*.img' | ForEach-Object { (Import-CheckpointImageFile $_.FullName).Entries[0].thread_core.criups_call_time_left_ns } | Where-Object { $_ })
        $timesLeft.Count | Should -Be 8
        $timesLeft | ForEach-Object { [long]$_ | Should -BeLessOrEqual 8000000000 }
        Wait-Until { -not (Test-ProcessAlive $target) } "process $target to end"
        # Down for 3 s: more than the target's tolerance (1 s either way), so that a relative wait that ended at its first
        # deadline (3 s early) or failed with EINTR at the restore (7 s early) fails.
        Start-Sleep -Seconds 3
        Restore-Process $image.Path | Out-Null
        Register-TestProcess $target

        $line = Invoke-SelfCheck $target $log -TimeoutSeconds 30
        Get-Content (Join-Path $work "calls") | ForEach-Object { Write-Host "    $_" }
        Write-Host "    $line"
        $line | Should -Match '^OK calls=12 '
        [double]($line -replace '^.* gap=', '') | Should -BeGreaterThan 3 -Because 'the process did not run from the checkpoint to the restore'
    }

    It 'leaves the calls of a process left running to resume as after any stop' {
        $work = Join-Path $TestDrive 'interrupted-left'
        $log = Join-Path $work 'interrupted.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'interrupted') -Arguments $work, 6, 'left-running' -WorkDirectory $work
        Start-Sleep -Seconds 1

        Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-interrupted-left') -LeaveRunning | Out-Null
        $line = Invoke-SelfCheck $target $log -TimeoutSeconds 30
        Get-Content (Join-Path $work "calls") | ForEach-Object { Write-Host "    $_" }
        Write-Host "    $line"
        $line | Should -Match '^OK calls=12 '
    }
}
