# End to end: memory that had transparent huge pages (MADV_HUGEPAGE) comes back in huge pages at once, because the
# restore gives the area its huge page advice before it allocates the pages (not only after the fill, when the
# pages would be small ones until khugepaged collapses them, seconds later if ever).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS

    # AnonHugePages (kB) of the area that starts at START in /proc/PID/smaps.
    function Get-AnonHugePages([int]$Id, [string]$Start) {
        $inArea = $false
        foreach ($line in Get-Content "/proc/$Id/smaps") {
            if ($line -match '^([0-9a-f]+)-[0-9a-f]+ ') { $inArea = $Matches[1] -eq $Start }
            elseif ($inArea -and $line -match '^AnonHugePages:\s+(\d+) kB') { return [int]$Matches[1] }
        }
        throw "no area at $Start in process $Id"
    }
}

Describe 'Transparent huge pages' {
    AfterEach { Stop-TestProcesses }

    It 'restores an area advised MADV_HUGEPAGE in huge pages, with its contents' {
        $enabled = Get-Content /sys/kernel/mm/transparent_hugepage/enabled -ErrorAction Ignore
        if ($enabled -notmatch '\[(always|madvise)\]') {
            Set-ItResult -Skipped -Because "transparent huge pages are off on this machine ($enabled)"
            return
        }
        $work = Join-Path $TestDrive 'hugepages'
        $log = Join-Path $work 'hugepages.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'hugepages') -Arguments $work -WorkDirectory $work
        $start = (Get-Content (Join-Path $work 'area')).Split('-')[0]
        Invoke-SelfCheck $target $log | Should -Be 'OK'
        $before = Get-AnonHugePages $target $start
        if ($before -eq 0) {
            Set-ItResult -Skipped -Because 'the kernel gave the target no huge page (memory too fragmented), so there is nothing to keep'
            return
        }

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-hugepages')
        Wait-Until { -not (Test-ProcessAlive $target) } "process $target to end"
        Restore-Process $image.Path | Out-Null
        Register-TestProcess $target

        # Read at once: khugepaged scans every 10 s, and the restore's own pages are what is asked here.
        # The original's huge pages are free again (it ended), so the restore can have as many.
        Get-AnonHugePages $target $start | Should -Be $before -Because "the original area had $before kB in huge pages"
        Invoke-SelfCheck $target $log | Should -Be 'OK'
    }
}
