# End to end: memory in the shapes CRIU's suite tries (Tests/Targets/memoryvariants.c): memfds with their seals
# (F_SEAL_WRITE too), a memfd and POSIX shared memory mapped privately with some pages written (the others still the
# file's), areas grown with mremap (anonymous and shared) or split by mprotect and munmap, a deleted sparse file whose
# holes stay holes, and file mappings whose protection differs from the file's open mode; each checkpointed, killed,
# restored and checked by the target. And the refusal of a hugetlb memfd, which CriuPS does not save.

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

    It 'refuses, before freezing, a hugetlb memfd, naming it' {
        $pages = [int](Get-Content /proc/sys/vm/nr_hugepages)
        try {
            # The pool the memfd takes its pages from: vm.nr_hugepages is 0 here until root raises it (put back below).
            if ($pages -lt 2) { & sh -c "echo 8 > /proc/sys/vm/nr_hugepages" 2>$null }
            if ([int](Get-Content /proc/sys/vm/nr_hugepages) -lt 2) {
                Set-ItResult -Skipped -Because 'this machine gives no huge pages (vm.nr_hugepages stays 0)'
                return
            }
            $work = Join-Path $TestDrive 'hugetlb'
            $script = "import mmap, os, time; fd = os.memfd_create('huge', os.MFD_HUGETLB); os.ftruncate(fd, 2 << 20); " +
                "m = mmap.mmap(fd, 2 << 20); m[0] = 1; open('ready', 'w').write(str(os.getpid()))`nwhile True: time.sleep(1)"
            $python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source
            $target = Start-TestTarget -Program $python -Arguments '-c', $script -WorkDirectory $work

            Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'hugetlb-image') -ErrorVariable errors -ErrorAction SilentlyContinue
            $errors.Count | Should -Be 1
            $errors[0].FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
            $errors[0].Exception.Message | Should -Match 'huge'
            Test-ProcessAlive $target | Should -BeTrue
        }
        finally {
            Stop-TestProcesses
            & sh -c "echo $pages > /proc/sys/vm/nr_hugepages" 2>$null
        }
    }
}
