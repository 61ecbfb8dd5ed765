# End to end: shared anonymous memory and memfds, shared by a small tree, come back shared.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS

    # The inodes of a process's shared memory objects, by the name /proc/PID/maps gives them (one per line).
    function Get-SharedObjects([int]$Id) {
        Get-Content "/proc/$Id/maps" | Where-Object { $_ -match '^\S+ \S{3}s \S+ 00:\S+ (\d+)\s+(/dev/zero \(deleted\)|/memfd:.*)$' } |
            ForEach-Object { "$($Matches[2]) $($Matches[1])" } | Sort-Object -Unique
    }
}

Describe 'Shared memory' {
    AfterEach { Stop-TestProcesses }

    It 'keeps shared anonymous memory and memfds shared by a parent and its children, with their seals and double mapping' {
        $work = Join-Path $TestDrive 'sharedmem'
        $log = Join-Path $work 'sharedmem.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'sharedmem') -Arguments $work -WorkDirectory $work
        Invoke-SelfCheck $target $log | Should -Match "^OK processes=3 pid=$target$"
        $pids = Get-ProcessTreeLayout $target | ForEach-Object { [int]$_.Split(' ')[0] }
        $pids.Count | Should -Be 3

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-sharedmem')
        $image.ProcessCount | Should -Be 3
        $parent = $image.Processes | Where-Object Id -EQ $target
        ($parent.Files | Where-Object Type -EQ 'MEMFD').Target | Should -Contain 'memfd:sharedmem main'
        ($parent.MemoryAreas | Where-Object Kind -EQ 'shared-anon').Count | Should -Be 3
        ($parent.MemoryAreas | Where-Object Path -EQ 'memfd:doublemapper').Count | Should -Be 2
        Test-Path (Join-Path $image.Path 'memfd.img') | Should -BeTrue
        @(Get-ChildItem $image.Path -Filter 'pagemap-shmem-*.img').Count | Should -Be 7 -Because '3 shared anonymous objects and 4 memfds with contents, each saved once'
        foreach ($id in $pids) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id of the tree to end" }

        Restore-Process $image.Path | Out-Null
        $pids | ForEach-Object { Register-TestProcess $_ }
        Invoke-SelfCheck $target $log | Should -Match "^OK processes=3 pid=$target$"
        Invoke-SelfCheck $target $log | Should -Match "^OK processes=3 pid=$target$"
        $objects = Get-SharedObjects $target
        $objects | Where-Object { $_ -like '/dev/zero (deleted) *' } | Should -HaveCount 3 -Because 'shared anonymous memory is still shared anonymous memory'
        foreach ($child in $pids | Select-Object -Skip 1) {
            Get-SharedObjects $child | Where-Object { $_ -like '/dev/zero (deleted) *' } | ForEach-Object { $objects | Should -Contain $_ -Because 'a child maps the very objects its parent maps' }
        }
    }
}
