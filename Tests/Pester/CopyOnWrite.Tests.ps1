# End to end: memory a parent and its children still share copy-on-write after fork (never written since) comes back
# shared, so that a forked tree's memory does not multiply on restore; every process still sees its own contents.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS

    # The counters of /proc/PID/smaps_rollup, in KiB, by name (Rss, Pss, Shared_Dirty, Private_Dirty, ...).
    function Get-MemoryRollup([int]$Id) {
        $counters = @{}
        foreach ($line in Get-Content "/proc/$Id/smaps_rollup") {
            if ($line -match '^(\w+):\s+(\d+) kB$') { $counters[$Matches[1]] = [long]$Matches[2] }
        }
        $counters
    }

    function Get-Private([hashtable]$Rollup) { $Rollup.Private_Clean + $Rollup.Private_Dirty }
    function Get-Shared([hashtable]$Rollup) { $Rollup.Shared_Clean + $Rollup.Shared_Dirty }
}

Describe 'Copy-on-write memory after fork' {
    AfterEach { Stop-TestProcesses }

    # 256 MiB shared by a parent, 3 children and a grandchild: restored private, the tree would use 1.25 GiB, not 256 MiB.
    It 'restores the pages a forked tree still shares as shared, with the same memory use' {
        $mib = 256
        $work = Join-Path $TestDrive 'cowtree'
        $log = Join-Path $work 'cowtree.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'cowtree') -Arguments $work, $mib, 3 -WorkDirectory $work -TimeoutSeconds 60
        Invoke-SelfCheck $target $log -TimeoutSeconds 60 | Should -Be "OK processes=5 pid=$target"
        $descendants = @(Get-Content (Join-Path $work 'children') | ForEach-Object { [int]$_ })
        $descendants.Count | Should -Be 4
        $tree = @($target) + $descendants
        $before = @{}
        foreach ($id in $tree) { $before[$id] = Get-MemoryRollup $id }

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-cowtree')
        $image.ProcessCount | Should -Be 5
        foreach ($id in $tree) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id of the tree to end" }

        Restore-Process $image.Path | Out-Null
        $tree | ForEach-Object { Register-TestProcess $_ }
        $after = @{}
        foreach ($id in $tree) { $after[$id] = Get-MemoryRollup $id }
        Invoke-SelfCheck $target $log -TimeoutSeconds 60 | Should -Be "OK processes=5 pid=$target"

        # The data alone is 256 MiB in each process: a child that got it back private would be off by that much.
        $slackKiB = 2048
        foreach ($id in $descendants) {
            $was, $now = $before[$id], $after[$id]
            Write-Host "process ${id}: private $(Get-Private $was) -> $(Get-Private $now) KiB, shared $(Get-Shared $was) -> $(Get-Shared $now) KiB, Pss $($was.Pss) -> $($now.Pss) KiB"
            Get-Private $now | Should -BeLessOrEqual ((Get-Private $was) + $slackKiB) -Because "child $id shares what it shared before the checkpoint"
            Get-Shared $now | Should -BeGreaterOrEqual ((Get-Shared $was) - $slackKiB) -Because "child $id shares what it shared before the checkpoint"
        }
        $pssBefore = ($tree | ForEach-Object { $before[$_].Pss } | Measure-Object -Sum).Sum
        $pssAfter = ($tree | ForEach-Object { $after[$_].Pss } | Measure-Object -Sum).Sum
        Write-Host "tree Pss: $pssBefore -> $pssAfter KiB"
        [math]::Abs($pssAfter - $pssBefore) | Should -BeLessOrEqual ($slackKiB * $tree.Count) -Because 'the tree uses the memory it used before the checkpoint'
    }
}
