# End to end: hugetlb memory (Tests/Targets/hugetlb.c): private and shared MAP_HUGETLB memory (shared with a forked
# child), a memfd made with MFD_HUGETLB mapped shared and private, a file of a hugetlbfs mount mapped shared and a
# System V segment made with SHM_HUGETLB; each checkpointed, killed, restored (also with -LazyPages) and checked by
# the target, which also finds each area hugetlb memory of 2 MiB pages again. And a restore that the huge page pool cannot serve, refused
# before any process exists (ImageIncompatible naming nr_hugepages), then done once the pool is large enough; an
# image of a page size this machine has no pool of; and the refusal of a mapped deleted hugetlbfs file.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS

    # The pool the target takes its pages from: vm.nr_hugepages is 0 here until root raises it (put back in AfterAll).
    # The target holds 7 pages; its restore needs as many again while the hugetlbfs file keeps its page.
    $script:PoolPages = 16
    $script:OldPages = [int](Get-Content /proc/sys/vm/nr_hugepages)
    function Set-HugePages([int]$Count) { & sh -c "echo $Count > /proc/sys/vm/nr_hugepages" 2>$null }
    if ($script:OldPages -lt $script:PoolPages) { Set-HugePages $script:PoolPages }
    $script:NoPages = if ([int](Get-Content /proc/sys/vm/nr_hugepages) -lt $script:PoolPages) {
        "this machine gives no $($script:PoolPages) huge pages (vm.nr_hugepages stays $(Get-Content /proc/sys/vm/nr_hugepages))"
    }
    elseif ((Get-Content /proc/meminfo | Where-Object { $_ -match '^Hugepagesize:\s+2048 kB' }).Count -eq 0) {
        'the default huge page size of this machine is not 2 MiB, which the target uses'
    }
    $script:Mount = Join-Path $TestDrive 'hugetlbfs'
    New-Item -ItemType Directory $script:Mount | Out-Null
    if (-not $script:NoPages) {
        & mount -t hugetlbfs none $script:Mount
        if ($LASTEXITCODE -ne 0) { $script:NoPages = "mount -t hugetlbfs failed at $($script:Mount)" }
    }

    function Start-HugeTarget([string]$Name) {
        $work = Join-Path $TestDrive $Name
        $target = Start-TestTarget -Program (Get-TestTarget 'hugetlb') -Arguments $work, $script:Mount -WorkDirectory $work
        [pscustomobject]@{ Pid = $target; Log = Join-Path $work 'hugetlb.log' }
    }
}

AfterAll {
    Stop-TestProcesses
    & umount $script:Mount 2>$null
    Set-HugePages $script:OldPages
}

Describe 'hugetlb memory' {
    BeforeEach {
        if ($script:NoPages) { Set-ItResult -Skipped -Because $script:NoPages }
    }
    AfterEach { Stop-TestProcesses }

    It 'restores private, shared (with a child), memfd, hugetlbfs file and System V hugetlb memory as hugetlb memory' {
        $target = Start-HugeTarget 'all'
        $image = Checkpoint-Process -Id $target.Pid -ImagePath (Join-Path $TestDrive 'all-image')
        Wait-Until { -not (Test-ProcessAlive $target.Pid) } 'the checkpointed process to end'

        # As CRIU records them: MAP_HUGETLB with MAP_HUGE_2MB (21 << 26) on the areas, MFD_HUGETLB and SHM_HUGETLB with
        # the same size bits on the memfd and the segment.
        $memfd = (Import-CheckpointImageFile (Join-Path $image.Path 'memfd.img')).entries
        @($memfd).Count | Should -Be 1
        $memfd[0].hugetlb_flag | Should -Be ((21 -shl 26) -bor 4)
        $segments = @(Get-ChildItem $image.Path -Filter 'ipcns-shm-*.img' | ForEach-Object { (Import-CheckpointImageFile $_.FullName).entries })
        $segments.hugetlb_flag | Should -Contain ((21 -shl 26) -bor 0x800)
        $areas = (Import-CheckpointImageFile (Join-Path $image.Path "mm-$($target.Pid).img")).entries[0].vmas
        @($areas | Where-Object { "$($_.flags)" -match '0x54040000' }).Count | Should -Be 6 -Because 'private, shared, memfd twice, file and segment areas carry MAP_HUGETLB | MAP_HUGE_2MB'

        Restore-Process $image.Path | Out-Null
        Invoke-SelfCheck $target.Pid $target.Log | Should -Be "OK pid=$($target.Pid)" -Because 'every page is back, in hugetlb areas, still shared where it was'
    }

    It 'restores hugetlb memory with -LazyPages, filling its hugetlb areas before the process runs' {
        $target = Start-HugeTarget 'lazy'
        $image = Checkpoint-Process -Id $target.Pid -ImagePath (Join-Path $TestDrive 'lazy-image')
        Wait-Until { -not (Test-ProcessAlive $target.Pid) } 'the checkpointed process to end'

        # A userfaultfd fills hugetlb memory a whole huge page at a time; its pages are saved a base page at a time.
        $restored = Restore-Process -ImagePath $image.Path -LazyPages
        ($restored | Wait-LazyRestore -Timeout 120).State | Should -Be 'Completed'
        Invoke-SelfCheck $target.Pid $target.Log | Should -Be "OK pid=$($target.Pid)"
    }

    It 'refuses a restore the huge page pool cannot serve before any process exists, and restores once it can' {
        $target = Start-HugeTarget 'pool'
        $image = Checkpoint-Process -Id $target.Pid -ImagePath (Join-Path $TestDrive 'pool-image')
        Wait-Until { -not (Test-ProcessAlive $target.Pid) } 'the checkpointed process to end'
        $hosts = (Get-RestoreHosts).Count
        try {
            # The hugetlbfs file keeps its page: 2 pages leave 1 free, and the restore needs more.
            Set-HugePages 2
            Restore-Process $image.Path -ErrorVariable errors -ErrorAction SilentlyContinue | Out-Null
        }
        finally { Set-HugePages $script:PoolPages }
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'ImageIncompatible,CriuPS.Cmdlets.RestoreProcessCommand'
        $errors[0].Exception.Message | Should -Match 'huge pages of 2048 kB'
        $errors[0].Exception.Message | Should -Match "process $($target.Pid)'s area"
        $errors[0].Exception.Message | Should -Match 'nr_hugepages'
        Test-ProcessAlive $target.Pid | Should -BeFalse -Because 'nothing of the tree was made'
        (Get-RestoreHosts).Count | Should -Be $hosts

        Restore-Process $image.Path | Out-Null
        Invoke-SelfCheck $target.Pid $target.Log | Should -Be "OK pid=$($target.Pid)"
    }

    It 'refuses an image whose huge pages are of a size this machine has no pool of, naming the memfd' {
        $target = Start-HugeTarget 'size'
        $image = Checkpoint-Process -Id $target.Pid -ImagePath (Join-Path $TestDrive 'size-image')
        Wait-Until { -not (Test-ProcessAlive $target.Pid) } 'the checkpointed process to end'
        # As if checkpointed on a machine of 64 KiB huge pages (arm64's MFD_HUGE_64KB), which x86-64 has not.
        $file = Join-Path $image.Path 'memfd.img'
        $memfd = Import-CheckpointImageFile $file
        $memfd.entries[0].hugetlb_flag = (16 -shl 26) -bor 4
        $memfd | Export-CheckpointImageFile $file -Force
        Remove-Item (Join-Path $image.Path 'criups-digests.img')

        Restore-Process $image.Path -ErrorVariable errors -ErrorAction SilentlyContinue | Out-Null
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'ImageIncompatible,CriuPS.Cmdlets.RestoreProcessCommand'
        $errors[0].Exception.Message | Should -Match 'huge pages of 64 kB \(memfd:huge\).*no pool of that size.*nr_hugepages'
        Test-ProcessAlive $target.Pid | Should -BeFalse -Because 'nothing of the tree was made'
    }

    It 'refuses, before freezing, a mapping of a deleted hugetlbfs file, naming it' {
        $work = Join-Path $TestDrive 'deleted'
        $path = Join-Path $script:Mount 'deleted-file'
        $script = "import mmap, os, time; fd = os.open('$path', os.O_RDWR | os.O_CREAT, 0o600); os.ftruncate(fd, 2 << 20); " +
            "m = mmap.mmap(fd, 2 << 20); m[0] = 1; os.unlink('$path'); open('ready', 'w').write(str(os.getpid()))`nwhile True: time.sleep(1)"
        $python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source
        $target = Start-TestTarget -Program $python -Arguments '-c', $script -WorkDirectory $work

        Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'deleted-image') -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $deleted = "'$([regex]::Escape($path)) \(deleted\)' was deleted from a hugetlbfs mount, where a ghost file cannot be made again"
        $errors[0].Exception.Message | Should -Match "mapping [0-9a-f]+-[0-9a-f]+ of $deleted"
        $errors[0].Exception.Message | Should -Match "fd \d+: open file $deleted"
        Test-ProcessAlive $target | Should -BeTrue -Because 'it was never frozen'
    }
}
