# Pre-dumps and incremental checkpoints: memory copied while the process runs, then only what it wrote since, with
# write tracking (userfaultfd + PAGEMAP_SCAN), restored through the chain of parent images.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:DirtyMem = Get-TestTarget 'dirtymem'
    $script:Checkpoint = 'CriuPS.Cmdlets.CheckpointProcessCommand'

    # Starts dirtymem with MIB mebibytes rewritten at PERMILLE per mille a second; returns its pid and log.
    function Start-DirtyMem([string]$Name, [int]$MiB, [int]$PerMille = 10) {
        $work = Join-Path $TestDrive $Name
        $log = Join-Path $work 'dirtymem.log'
        $target = Start-TestTarget -Program $DirtyMem -Arguments $MiB, $PerMille, $log -WorkDirectory $work
        [pscustomobject]@{ Id = $target; Log = $log }
    }

    # The process's descriptors as /proc shows them: "number -> what".
    function Get-Descriptors([int]$Id) {
        Get-ChildItem "/proc/$Id/fd" | Sort-Object { [int]$_.Name } | ForEach-Object { "$($_.Name) -> $($_.LinkTarget)" }
    }

    function Get-PagesFileBytes([string]$Image) {
        (Get-ChildItem $Image -Filter 'pages-*.img' | Measure-Object -Property Length -Sum).Sum
    }

    # Kills the original and restores the image in its place; returns the restored process's answer to a self-check.
    function Restore-AndVerify($Target, [string]$Image) {
        if (Test-ProcessAlive $Target.Id) {
            Send-Signal $Target.Id 'KILL'
            Wait-Until { -not (Test-ProcessAlive $Target.Id) } "process $($Target.Id) to end"
        }
        $restored = Restore-Process $Image
        Register-TestProcess $restored.Id
        $restored.Id | Should -Be $Target.Id
        Invoke-SelfCheck $Target.Id $Target.Log
    }
}

Describe 'Checkpoint-Process -PreDump and -ParentImage' {
    AfterEach { Stop-TestProcesses }

    It 'pre-dumps twice, then checkpoints a 512 MiB process writing 1 % of it a second: the final image holds a small fraction of the pages, the restored process verifies all of its memory, and the freeze is a fraction of a one-shot checkpoint''s' {
        $target = Start-DirtyMem 'big' 512
        Invoke-SelfCheck $target.Id $target.Log | Should -Match "^OK pages=131072 writes=\d+ pid=$($target.Id)$"
        $total = 512MB

        # The one-shot checkpoint of the same process, for comparison; it keeps running.
        $oneShot = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'one-shot') -LeaveRunning
        $oneShot.MemoryBytes | Should -BeGreaterThan $total

        $first = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'pre1') -PreDump
        $first.PreDump | Should -BeTrue
        $first.ParentPath | Should -BeNullOrEmpty
        $first.MemoryBytes | Should -BeGreaterThan $total
        Test-ProcessAlive $target.Id | Should -BeTrue

        Start-Sleep -Seconds 1
        $second = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'pre2') -PreDump -ParentImage $first
        $second.ParentPath | Should -Be $first.Path
        (Get-Item (Join-Path $second.Path 'parent')).LinkTarget | Should -Be '../pre1'
        $second.MemoryBytes | Should -BeLessThan ($total / 10)
        $second.ParentMemoryBytes | Should -BeGreaterThan ($total * 0.9)

        Start-Sleep -Seconds 1
        $final = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'final') -ParentImage $second.Path -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings | Should -BeNullOrEmpty
        $final.PreDump | Should -BeFalse
        (Get-Item (Join-Path $final.Path 'parent')).LinkTarget | Should -Be '../pre2'
        # From the image itself: the pages file and the pagemap's entries against the process's memory.
        $written = Get-PagesFileBytes $final.Path
        $written | Should -BeLessThan ($total / 10)
        $pagemap = Import-CheckpointImageFile (Get-ChildItem $final.Path -Filter 'pagemap-*.img').FullName
        $inParent = ($pagemap.entries | Select-Object -Skip 1 | Where-Object flags -Match 'PE_PARENT' | Measure-Object -Property nr_pages -Sum).Sum * 4096
        $inParent | Should -BeGreaterThan ($total * 0.9)
        $final.ParentMemoryBytes | Should -Be $inParent
        $final.FrozenTime | Should -BeLessThan $oneShot.FrozenTime
        # A pre-dump is frozen only to list the pages and arm the tracking; it copies them while the process runs.
        $first.FrozenTime | Should -BeLessThan $oneShot.FrozenTime
        $second.FrozenTime | Should -BeLessThan $oneShot.FrozenTime
        Write-Host ("    frozen: one-shot {0:N0} ms, pre-dumps {4:N0} and {5:N0} ms, final after them {1:N0} ms; written: one-shot {2:N1} MiB, final {3:N1} MiB" -f
            $oneShot.FrozenTime.TotalMilliseconds, $final.FrozenTime.TotalMilliseconds, ((Get-PagesFileBytes $oneShot.Path) / 1MB), ($written / 1MB),
            $first.FrozenTime.TotalMilliseconds, $second.FrozenTime.TotalMilliseconds)

        Restore-AndVerify $target $final.Path | Should -Match "^OK pages=131072 writes=\d+ pid=$($target.Id)$"
    }

    It 'leaves the process running with the descriptors it had, after pre-dumps, after the final checkpoint and after restore' {
        $target = Start-DirtyMem 'fds' 16
        $before = Get-Descriptors $target.Id
        $pre = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'fds-pre') -PreDump
        Test-ProcessAlive $target.Id | Should -BeTrue
        # The pre-dump's steps (DumpSteps.PreDump), in order: the checkpoint's where it does the same, its own where not.
        Get-LoggedSteps (Join-Path $pre.Path 'dump.log') 'dump' | Should -Be 'engine ready', 'target', 'write tracking', 'tree',
            'image', 'freeze', 'attach', 'pages found and writes tracked', 'resume', 'memory', 'images', 'commit', 'write tracking published'
        (Get-Content "/proc/$($target.Id)/status" | Select-String '^TracerPid:').Line | Should -Match '\s0$'
        Get-Descriptors $target.Id | Should -Be $before
        Invoke-SelfCheck $target.Id $target.Log | Should -Match '^OK '

        $final = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'fds-final') -ParentImage $pre -LeaveRunning
        $final.ParentMemoryBytes | Should -BeGreaterThan 8MB
        Get-Descriptors $target.Id | Should -Be $before
        (Get-CheckpointImage $final.Path).Processes[0].Files.Fd | Should -Be @(0, 1, 2)

        Restore-AndVerify $target $final.Path | Should -Match '^OK '
        Get-Descriptors $target.Id | Should -Be $before
    }

    It 'restores lazily through the chain: pages left to the parent image arrive on fault and in the background too' {
        $target = Start-DirtyMem 'lazy' 64
        $pre = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'lazy-pre') -PreDump
        Start-Sleep -Milliseconds 500
        $final = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'lazy-final') -ParentImage $pre
        $final.ParentMemoryBytes | Should -BeGreaterThan 32MB
        Wait-Until { -not (Test-ProcessAlive $target.Id) } 'the checkpointed process to end'

        $restored = Restore-Process -ImagePath $final.Path -LazyPages
        Register-TestProcess $restored.Id
        $lazy = $restored | Wait-LazyRestore -Timeout 120
        $lazy.State | Should -Be 'Completed'
        $lazy.PagesTotal | Should -BeGreaterThan (($final.MemoryBytes + $final.ParentMemoryBytes) / 4096 / 2)
        Invoke-SelfCheck $target.Id $target.Log | Should -Match "^OK pages=16384 writes=\d+ pid=$($target.Id)$"
    }

    It 'copies areas mapped since the pre-dump in full, with a warning that names them, and restores them' {
        $target = Start-DirtyMem 'mapped' 16
        $pre = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'mapped-pre') -PreDump
        Invoke-SelfCheck $target.Id $target.Log 'USR2' | Should -Match '^MAPPED '

        $final = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'mapped-final') -ParentImage $pre -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings.Count | Should -Be 1
        $warnings[0].Message | Should -Match "1 memory area\(s\) of process $($target.Id) \(4096 KiB\) were not tracked since '.*mapped-pre' \(mapped, moved or replaced since\): their pages are saved in full"
        $final.MemoryBytes | Should -BeGreaterOrEqual 4MB
        $final.ParentMemoryBytes | Should -BeGreaterThan 8MB

        Restore-AndVerify $target $final.Path | Should -Match '^OK '
    }

    It 'tracks again from the pre-dump after an exec (a new address space), whose areas it copies in full with a warning' {
        $target = Start-DirtyMem 'exec' 16
        $first = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'exec-pre1') -PreDump
        Invoke-SelfCheck $target.Id $target.Log 'HUP' | Should -Be "STARTED pid=$($target.Id)"

        $second = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'exec-pre2') -PreDump -ParentImage $first -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings.Message | Should -Match "memory area\(s\) of process $($target.Id) \(\d+ KiB\) were not tracked since '.*exec-pre1'"
        $second.ParentMemoryBytes | Should -Be 0
        Join-Path $second.Path 'dump.log' | Should -FileContentMatch 'tracking starts over'

        $final = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'exec-final') -ParentImage $second -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings | Should -BeNullOrEmpty
        $final.ParentMemoryBytes | Should -BeGreaterThan 8MB
        Restore-AndVerify $target $final.Path | Should -Match '^OK '
    }

    It 'copies everything, with a warning, when the tracking is not this session''s, and the image restores' {
        $target = Start-DirtyMem 'session' 16
        $pre = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'session-pre') -PreDump
        $finalPath = Join-Path $TestDrive 'session-final'
        $module = Join-Path (Get-RepositoryRoot) 'out/CriuPS/CriuPS.psd1'
        $output = & (Join-Path $PSHOME 'pwsh') -NoProfile -NonInteractive -Command "Import-Module '$module'; Checkpoint-Process -Id $($target.Id) -ImagePath '$finalPath' -ParentImage '$($pre.Path)' 3>&1 | ForEach-Object { `"`$_`" }"
        ($output -join "`n") | Should -Match "the writes of process $($target.Id) since '.*session-pre' are not known \(write tracking lives in the PowerShell session that took the pre-dump.*\): all its pages are saved in '.*session-final'"
        $final = Get-CheckpointImage $finalPath
        $final.ParentMemoryBytes | Should -Be 0
        $final.MemoryBytes | Should -BeGreaterThan 16MB

        Restore-AndVerify $target $finalPath | Should -Match '^OK '
    }

    It 'starts over after a pre-dump that failed: the process runs on, and the next checkpoint copies everything, with a warning' {
        $target = Start-DirtyMem 'failed' 16
        $before = Get-Descriptors $target.Id
        $pre = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'failed-pre1') -PreDump
        $path = Join-Path $TestDrive 'failed-pre2'
        $env:CRIUPS_FAIL_AT = 'mid-memory'
        try {
            Checkpoint-Process -Id $target.Id -ImagePath $path -PreDump -ParentImage $pre -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }
        finally { $env:CRIUPS_FAIL_AT = $null }
        $errors[0].FullyQualifiedErrorId | Should -Be "DumpFailed,$Checkpoint"
        if ($errors[0].ErrorDetails.Message -match 'log: (\S+)\)$') { Remove-Item $Matches[1] }
        Test-Path $path | Should -BeFalse
        Test-ProcessAlive $target.Id | Should -BeTrue
        Get-Descriptors $target.Id | Should -Be $before

        # The failed pre-dump had protected the pages it found written again: what they held is not in any image.
        $final = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'failed-final') -ParentImage $pre -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings.Message | Should -Match "the writes of process $($target.Id) since '.*failed-pre1' are not known"
        $final.ParentMemoryBytes | Should -Be 0
        Restore-AndVerify $target $final.Path | Should -Match '^OK '
    }

    It 'copies everything, with a warning, when the parent is not the last pre-dump' {
        $target = Start-DirtyMem 'stale' 16
        $first = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'stale-pre1') -PreDump
        Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'stale-pre2') -PreDump -ParentImage $first | Out-Null
        $final = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'stale-final') -ParentImage $first -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings.Message | Should -Match "the write tracking of process $($target.Id) does not start at '.*stale-pre1' \(a later pre-dump took it over\)"
        $final.ParentMemoryBytes | Should -Be 0
        Restore-AndVerify $target $final.Path | Should -Match '^OK '
    }

    It 'refuses a parent image that does not exist before anything is frozen, naming it' {
        $target = Start-DirtyMem 'noparent' 4
        $missing = Join-Path $TestDrive 'no-such-image'
        Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'noparent-final') -ParentImage $missing -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be "ImageNotFound,$Checkpoint"
        $errors[0].TargetObject | Should -Be $missing
        $errors[0].Exception.Message | Should -BeLike "*$missing*"
        Test-Path (Join-Path $TestDrive 'noparent-final') | Should -BeFalse
        Test-ProcessAlive $target.Id | Should -BeTrue
    }

    It 'refuses -PreDump and -ParentImage with -PageServer before anything is frozen' {
        $target = Start-DirtyMem 'server' 4
        $pre = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'server-pre') -PreDump
        foreach ($arguments in @{ PreDump = $true }, @{ ParentImage = $pre }) {
            Checkpoint-Process -Id $target.Id -PageServer 127.0.0.1:9 @arguments -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $errors[0].FullyQualifiedErrorId | Should -Be "Unsupported,$Checkpoint"
            $errors[0].Exception.Message | Should -Match 'written to image directories, not sent to a page server'
        }
        Test-ProcessAlive $target.Id | Should -BeTrue
        (Get-Content "/proc/$($target.Id)/status" | Select-String '^TracerPid:').Line | Should -Match '\s0$'
    }

    It 'refuses to restore an image whose parent is gone, naming the missing directory, and a pre-dump by itself' {
        $target = Start-DirtyMem 'broken' 4
        $pre = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'broken-pre') -PreDump
        $final = Checkpoint-Process -Id $target.Id -ImagePath (Join-Path $TestDrive 'broken-final') -ParentImage $pre
        Wait-Until { -not (Test-ProcessAlive $target.Id) } 'the checkpointed process to end'

        Restore-Process $pre.Path -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be 'ImageIncompatible,CriuPS.Cmdlets.RestoreProcessCommand'
        $errors[0].Exception.Message | Should -Match 'is a pre-dump'

        Remove-Item -Recurse $pre.Path
        Restore-Process $final.Path -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be 'ImageNotFound,CriuPS.Cmdlets.RestoreProcessCommand'
        $errors[0].TargetObject | Should -Be $pre.Path
        $errors[0].Exception.Message | Should -BeLike "The parent image '$($pre.Path)' of '$($final.Path)' is missing*"
        Test-ProcessAlive $target.Id | Should -BeFalse
    }
}
