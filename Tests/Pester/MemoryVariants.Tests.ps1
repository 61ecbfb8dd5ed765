# End to end: memory in the shapes CRIU's suite tries (Tests/Targets/memoryvariants.c): memfds with their seals
# (F_SEAL_WRITE too), a memfd and POSIX shared memory mapped privately with some pages written (the others still the
# file's), areas grown with mremap (anonymous and shared) or split by mprotect and munmap, a deleted sparse file whose
# holes stay holes, and file mappings whose protection differs from the file's open mode; each checkpointed, killed,
# restored and checked by the target. (hugetlb memfds: HugeTlb.Tests.ps1.)

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS

    # /proc/PID/maps as address ranges, protections, offsets and files, adjacent anonymous areas of one protection
    # merged.
    function Get-MapsLayout([string[]]$Lines) {
        $areas = [System.Collections.Generic.List[object]]::new()
        foreach ($line in $Lines) {
            $f = $line -split '\s+', 6
            $range = $f[0].Split('-')
            $area = [pscustomobject]@{ Start = $range[0]; End = $range[1]; Perms = $f[1]; Offset = $f[2]; Path = "$($f[5])".Trim() }
            $last = if ($areas.Count) { $areas[$areas.Count - 1] }
            if ($last -and -not $last.Path -and -not $area.Path -and $last.End -eq $area.Start -and $last.Perms -eq $area.Perms) {
                $last.End = $area.End
            }
            else { $areas.Add($area) }
        }
        $areas | ForEach-Object { "$($_.Start)-$($_.End) $($_.Perms) $($_.Offset) $($_.Path)" }
    }

    # Each area of /proc/PID/smaps with its VmFlags ("start-end flags").
    function Get-VmFlags([int]$Id) {
        $range = $null
        foreach ($line in Get-Content "/proc/$Id/smaps") {
            if ($line -match '^([0-9a-f]+-[0-9a-f]+) ') { $range = $Matches[1] }
            elseif ($line -match '^VmFlags:\s*(.*)$') { "$range $($Matches[1].Trim())" }
        }
    }
}

Describe 'Memory variants' {
    AfterEach { Stop-TestProcesses }

    It 'restores sealed and privately mapped memfds, private shared memory, grown and split areas, a sparse ghost file and mappings with changed protections' {
        $work = Join-Path $TestDrive 'memory'
        $log = Join-Path $work 'memoryvariants.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'memoryvariants') -Arguments $work -WorkDirectory $work
        $maps = Get-Content "/proc/$target/maps"

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'memory-image')
        @($image.Processes.Files | Where-Object Type -EQ 'MEMFD').Count | Should -BeGreaterOrEqual 4
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'

        Restore-Process $image.Path | Out-Null
        # Every area at its place with its protection, offset and file; the files made again have inodes of their own,
        # and the kernel may merge anonymous neighbours that a move (mremap) had kept apart, as with CRIU.
        (Get-MapsLayout (Get-Content "/proc/$target/maps")) | Should -Be (Get-MapsLayout $maps)
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'every seal, page, protection, hole and file is back' 
    }

    It 'restores one reservation protected page by page: each page an area at its place with its protection and flags, guards that held data too' {
        $work = Join-Path $TestDrive 'guarded'
        $log = Join-Path $work 'guardedpages.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'guardedpages') -Arguments $work -WorkDirectory $work
        $maps = Get-Content "/proc/$target/maps"
        $flags = Get-VmFlags $target
        @($maps | Where-Object { $_ -match ' ---p 00000000 00:00 0\s*$' }).Count | Should -BeGreaterOrEqual 300 -Because 'the guards are areas of their own'

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'guarded-image')
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        Restore-Process $image.Path | Out-Null
        # The areas the kernel kept apart for their protections come back apart, with the same flags (a guard that
        # was writable once is accounted, "ac", as it was), and every page holds what it held.
        Get-Content "/proc/$target/maps" | Should -Be $maps
        Get-VmFlags $target | Should -Be $flags
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target"
    }
}
