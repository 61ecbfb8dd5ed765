# What CRIU 4.2's restore requires of an image directory, checked on CriuPS's images of real targets without CRIU
# (CI has none). Each rule is a fact learnt by restoring CriuPS images with CRIU 4.2 built from source (README, "How
# it works"); every rule also holds for the images CRIU itself wrote (../shared/interop), which shows it describes
# CRIU and not CriuPS.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $interop = Get-SharedInterop
    $script:CriuImages = @(Get-ChildItem (Join-Path $interop 'criu-4.2/*/images') -Directory | ForEach-Object {
            @{ Vector = $_.Parent.Name; Path = $_.FullName }
        })
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS

    # CRIU's bound on mm_saved_auxv on x86-64 (AT_VECTOR_SIZE), in words.
    $script:CriuAuxvWords = 44
    # inventory network_lock_method: CRIU's NETWORK_LOCK_NFTABLES.
    $script:LockNftables = 1
    # core task_state of a zombie: CRIU's TASK_DEAD.
    $script:TaskDead = 2

    function Read-ImageFile([string]$Directory, [string]$Name) {
        Import-CheckpointImageFile -LiteralPath (Join-Path $Directory $Name) -ErrorAction Stop
    }

    # Every image CRIU's restore opens for a tree (criu/cr-restore.c, pstree.c, files.c, mem.c, seccomp.c) that is
    # missing or does not decode (the reader refuses an entry without a required field, as CRIU's protobuf-c does),
    # and every file id CRIU looks up in files.img that is not there. CRIU reads a missing image as an empty one: the
    # restore would go on without a process's descriptors, fs information or memory.
    function Get-MissingImages([string]$Directory) {
        $problems = [System.Collections.Generic.List[string]]::new()
        function Open([string]$Name) {
            if (-not (Test-Path -LiteralPath (Join-Path $Directory $Name))) {
                $problems.Add("$Name is missing")
                return
            }
            try { Read-ImageFile $Directory $Name } catch { $problems.Add("$Name does not decode: $_") }
        }
        Open 'inventory.img' | Out-Null
        Open 'seccomp.img' | Out-Null
        $files = Open 'files.img'
        $fileIds = [System.Collections.Generic.HashSet[long]]::new()
        foreach ($file in @($files.entries)) { if ($null -ne $file) { [void]$fileIds.Add($file.id) } }
        function Find-File([long]$Id, [string]$What) {
            if (-not $fileIds.Contains($Id)) { $problems.Add("$What names file $Id, which files.img does not hold") }
        }
        $pstree = Open 'pstree.img'
        foreach ($task in @($pstree.entries)) {
            foreach ($thread in $task.threads | Where-Object { $_ -ne $task.pid }) { Open "core-$thread.img" | Out-Null }
            $leader = Open "core-$($task.pid).img"
            if ($leader -and $leader.entries[0].tc.task_state -eq $TaskDead) { continue } # a zombie has its core only
            $ids = Open "ids-$($task.pid).img"
            $mm = Open "mm-$($task.pid).img"
            $fs = Open "fs-$($task.pid).img"
            $pagemap = Open "pagemap-$($task.pid).img"
            if ($pagemap -and @($pagemap.entries | Where-Object { $_.flags -match 'PE_PRESENT' }).Count -gt 0) {
                Open "pages-$($pagemap.entries[0].pages_id).img" | Out-Null
            }
            if ($ids) {
                foreach ($fd in @((Open "fdinfo-$($ids.entries[0].files_id).img").entries)) {
                    if ($null -ne $fd) { Find-File $fd.id "fd $($fd.fd) of process $($task.pid)" }
                }
            }
            if ($mm) {
                Find-File $mm.entries[0].exe_file_id "the executable of process $($task.pid)"
                foreach ($vma in $mm.entries[0].vmas | Where-Object { $_.status -match 'VMA_FILE_(PRIVATE|SHARED)' }) {
                    Find-File $vma.shmid "the mapping at $($vma.start) of process $($task.pid)"
                }
            }
            if ($fs) {
                Find-File $fs.entries[0].cwd_id "the working directory of process $($task.pid)"
                Find-File $fs.entries[0].root_id "the root of process $($task.pid)"
            }
        }
        $problems
    }

    # inventory root_ids are the ids of the task that dumped: CRIU's restore compares the root task's ids with them,
    # reads an equal files_id as the root sharing the restorer's descriptor table ("Image corruption on kIDs data"),
    # and a different namespace id as a namespace to create from images (which CriuPS does not write).
    function Get-RootIdProblems([string]$Directory) {
        $root = (Read-ImageFile $Directory 'inventory.img').entries[0].root_ids
        if (-not $root) { return 'the inventory has no root_ids' }
        $tasks = (Read-ImageFile $Directory 'pstree.img').entries
        foreach ($task in $tasks) {
            $idsFile = "ids-$($task.pid).img"
            if (-not (Test-Path -LiteralPath (Join-Path $Directory $idsFile))) { continue } # a zombie
            $ids = (Read-ImageFile $Directory $idsFile).entries[0]
            foreach ($kind in 'vm_id', 'files_id', 'fs_id', 'sighand_id') {
                if ($ids.$kind -eq $root.$kind) { "process $($task.pid) has the dumping task's $kind $($ids.$kind)" }
            }
            if ($task.pid -eq $tasks[0].pid) {
                foreach ($kind in 'pid_ns_id', 'net_ns_id', 'ipc_ns_id', 'uts_ns_id', 'mnt_ns_id', 'user_ns_id', 'cgroup_ns_id', 'time_ns_id') {
                    if ($ids.$kind -ne $root.$kind) { "the root task's $kind $($ids.$kind) is not the dumping task's $($root.$kind)" }
                }
            }
        }
    }

    # CRIU refuses an mm_saved_auxv longer than its AT_VECTOR_SIZE ("Image corrupted on pid N").
    function Get-AuxvProblems([string]$Directory) {
        foreach ($mm in Get-ChildItem -LiteralPath $Directory -Filter 'mm-*.img') {
            $count = @((Read-ImageFile $Directory $mm.Name).entries[0].mm_saved_auxv).Count
            if ($count -gt $CriuAuxvWords) { "$($mm.Name) holds $count auxv words" }
        }
    }

    # CRIU writes a file's mnt_id only when it saves the mount namespace, and its restore looks the mount up among
    # the saved ones when there is one: a ghost file is then not linked back ("Can't link ... No such file").
    function Get-MountIdProblems([string]$Directory) {
        if (Get-ChildItem -LiteralPath $Directory -Filter 'mountpoints-*.img') { return }
        foreach ($file in (Read-ImageFile $Directory 'files.img').entries | Where-Object { $_.reg -and $null -ne $_.reg.mnt_id }) {
            "file $($file.id) ($($file.reg.name)) names mount $($file.reg.mnt_id), and no mount is saved"
        }
    }

    # CRIU's restore finds a unix socket's peer among the entries of files.img before it, and later only from a peer
    # that names it back ("unix: FATAL: Peer N unresolved for M").
    function Get-UnixPeerOrderProblems([string]$Directory) {
        $sockets = @((Read-ImageFile $Directory 'files.img').entries | Where-Object usk | ForEach-Object usk)
        $position = @{}
        for ($i = 0; $i -lt $sockets.Count; $i++) { $position[[long]$sockets[$i].ino] = $i }
        for ($i = 0; $i -lt $sockets.Count; $i++) {
            $peer = [long]$sockets[$i].peer
            if ($peer -eq 0 -or -not $position.ContainsKey($peer)) { continue }
            $other = $sockets[$position[$peer]]
            if ([long]$other.peer -ne [long]$sockets[$i].ino -and $position[$peer] -gt $i) {
                "socket $($sockets[$i].ino) comes before its peer $peer, which does not name it"
            }
        }
    }

    # Told nftables, CRIU's restore deletes the table of the dump's run id, and reports one that does not exist as an
    # error: only a dump that locked TCP connections (and saved them) may say so.
    function Get-NetworkLockProblems([string]$Directory) {
        $method = (Read-ImageFile $Directory 'inventory.img').entries[0].network_lock_method
        if ($method -eq $LockNftables -and -not (Get-ChildItem -LiteralPath $Directory -Filter 'tcp-stream-*.img')) {
            'the inventory names the nftables lock, and no connection was locked'
        }
    }

    function Get-CriuRestoreProblems([string]$Directory) {
        @(Get-MissingImages $Directory) + @(Get-RootIdProblems $Directory) + @(Get-AuxvProblems $Directory) +
        @(Get-MountIdProblems $Directory) + @(Get-UnixPeerOrderProblems $Directory) + @(Get-NetworkLockProblems $Directory) |
            Where-Object { $_ }
    }

    # Checkpoints the C test target NAME, started with its work directory (TestDrive/LABEL) and ARGUMENTS as its
    # arguments, into TestDrive/LABEL-image (the process ends), and returns the image.
    function Save-Target([string]$Name, [string]$Label = $Name, [string[]]$Arguments = @()) {
        $work = Join-Path $TestDrive $Label
        $target = Start-TestTarget -Program (Get-TestTarget $Name) -Arguments (@($work) + $Arguments) -WorkDirectory $work
        Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive "$Label-image")
    }
}

AfterAll { Stop-TestProcesses }

Describe 'CriuPS images as CRIU 4.2 restores them' {
    It 'of <Name> follow every rule of CRIU''s restore' -ForEach @(
        @{ Name = 'threads'; What = '17 threads' }
        @{ Name = 'tree'; What = '10 processes: pipes, a socketpair, a zombie, a stopped process, sessions and groups' }
        @{ Name = 'unixsockets'; What = 'unix sockets of every kind, some connected one way' }
        @{ Name = 'specialfiles'; What = 'ghost files, a FIFO and locks' }
    ) {
        $image = Save-Target $Name
        Get-CriuRestoreProblems $image.Path | Should -BeNullOrEmpty -Because "CRIU 4.2 restores the image of $What"
    }

    It 'of fdcorners <Mode> (<What>) follow every rule of CRIU''s restore' -ForEach @(
        @{ Mode = 'paths'; What = 'O_PATH descriptors, /proc files' }
        @{ Mode = 'unlinked'; What = 'sockets on removed paths, a ghost FIFO' }
        @{ Mode = 'lease'; What = 'leases (FL_LEASE)' }
        @{ Mode = 'pidfd'; What = 'pidfds of children, a zombie, a reaped child and itself' }
    ) {
        $image = Save-Target 'fdcorners' "fdcorners-$Mode" $Mode
        Get-CriuRestoreProblems $image.Path | Should -BeNullOrEmpty -Because "CRIU 4.2 restores the image of $What"
    }

    It 'keep CRIU''s form of the auxiliary vector, and CriuPS restores it as it was' {
        $work = Join-Path $TestDrive 'selfcheck'
        $target = Start-TestTarget -Program (Get-TestTarget 'selfcheck') -Arguments 'sleep', $work -WorkDirectory $work
        $auxv = [IO.File]::ReadAllBytes("/proc/$target/auxv")
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'selfcheck-image')
        Wait-Until { -not (Test-ProcessAlive $target) } "process $target to end"

        $mm = (Read-ImageFile $image.Path "mm-$target.img").entries[0]
        @($mm.mm_saved_auxv).Count | Should -BeLessOrEqual $CriuAuxvWords
        # Linux 6.18 gives 22 entries and AT_NULL: CRIU's 44 words hold every entry, and CriuPS needs no field of its
        # own. Where the entries do not fit, CriuPS keeps the whole vector (AT_NULL included) beside CRIU's.
        $words = $auxv.Length / 8
        if ($words - 2 -le $CriuAuxvWords) { $mm.criups_saved_auxv | Should -BeNullOrEmpty }
        else { @($mm.criups_saved_auxv).Count | Should -Be $words }

        $restored = Restore-Process -ImagePath $image.Path
        Register-TestProcess $restored.Id
        [IO.File]::ReadAllBytes("/proc/$target/auxv") | Should -Be $auxv
        Invoke-SelfCheck $target (Join-Path $work 'selfcheck.log') | Should -Match '^OK '
    }

    It 'are refused by the rules when an image CRIU opens is missing or names a file files.img lacks' {
        $image = Save-Target 'threads' -Label 'threads-again'
        $copy = Join-Path $TestDrive 'threads-broken'
        Copy-Item -Recurse $image.Path $copy
        $root = $image.Processes[0].Id
        Get-CriuRestoreProblems $copy | Should -BeNullOrEmpty
        Remove-Item (Join-Path $copy "fs-$root.img")
        $files = Read-ImageFile $copy 'files.img'
        $files.entries = @($files.entries | Where-Object type -NE 'REG')
        $files | Export-CheckpointImageFile -Path (Join-Path $copy 'files.img') -Force

        $problems = @(Get-CriuRestoreProblems $copy)
        $problems | Should -Contain "fs-$root.img is missing"
        $problems -match "^the executable of process $root names file \d+, which files.img does not hold$" | Should -HaveCount 1
    }
}

Describe 'The rules of CRIU''s restore' {
    It 'hold for the images CRIU 4.2 wrote itself (<Vector>)' -ForEach $CriuImages {
        Get-CriuRestoreProblems $Path | Should -BeNullOrEmpty
    }
}
