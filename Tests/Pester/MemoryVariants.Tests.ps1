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
}
