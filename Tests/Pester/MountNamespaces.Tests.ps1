# Mount namespaces (issue 14 step 5): a tree in a mount namespace of its own (unshare --mount) is saved with its
# mount tree (mountpoints-ID.img, a tmpfs's files in tmpfs-dev-N.tar.gz) and comes back in a new mount namespace
# made from the image: its tmpfs with the same files, modes, owners and links, its bind of a host directory with
# its flags, its own proc mount; selfcheck verifies the rest of the process. What CriuPS does not save (an overlay,
# a file the process holds at a path that names another file from outside) is refused before anything is frozen.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:SelfCheck = Get-TestTarget 'selfcheck'
    $script:Unshare = (Get-Command unshare -CommandType Application | Select-Object -First 1).Source

    # Starts selfcheck in WORK under `unshare --mount FLAGS sh -c SETUP`, the mounts SETUP makes in its namespace.
    # The host's /run/netns mounts (other sessions' namespaces, which may go before the restore) are let go inside.
    function Start-InMountNamespace([string]$Work, [string]$Setup, [string[]]$Flags = @()) {
        New-Item -ItemType Directory -Force $Work | Out-Null
        $script = "umount -l /run/netns 2>/dev/null; $Setup && exec '$SelfCheck' sleep '$Work'"
        Start-TestTarget -Program $Unshare -Arguments (@('--mount', '--propagation', 'private') + $Flags + @('/bin/sh', '-c', $script)) -WorkDirectory $Work
    }

    # The mounts the process sees, by mount point: type, source, its own options and the superblock's.
    function Get-Mounts([int]$Id) {
        $mounts = @{}
        foreach ($line in Get-Content "/proc/$Id/mountinfo") {
            $fields = $line.Split(' ')
            $tail = $fields[([array]::IndexOf($fields, '-') + 1)..($fields.Count - 1)]
            $mounts[$fields[4]] = [pscustomobject]@{ Type = $tail[0]; Source = $tail[1]; Options = $fields[5]; Super = $tail[2]; Root = $fields[3] }
        }
        $mounts
    }

    function Get-Refusal([int]$Target, [string]$Image) {
        $failure = $null
        try { Checkpoint-Process -Id $Target -ImagePath $Image -ErrorAction Stop | Out-Null }
        catch { $failure = $_ }
        $failure | Should -Not -BeNullOrEmpty -Because 'the checkpoint must be refused'
        Test-Path $Image | Should -BeFalse -Because 'nothing is written'
        (Get-Content "/proc/$Target/status" | Where-Object { $_ -match '^(State|TracerPid):' }) -join ' ' | Should -Match 'State:\s+[RS] .*TracerPid:\s+0' -Because 'it runs on, neither stopped nor traced'
        $failure
    }
}

AfterAll { Stop-TestProcesses }

Describe 'A process in a mount namespace of its own (unshare --mount)' {
    It 'comes back in a new mount namespace with its tmpfs files, its bind of a host directory and its proc' {
        $work = Join-Path $TestDrive 'mnt-tree'
        $shared = Join-Path $TestDrive 'host-dir'
        New-Item -ItemType Directory -Force $shared, "$work/t", "$work/b", "$work/p" | Out-Null
        Set-Content "$shared/from-host" 'seen from the host'
        $setup = @(
            "mount -t tmpfs -o size=4m,mode=0751 criups-tmp '$work/t'"
            "mkdir -m 0700 '$work/t/sub'"
            "printf 'tmpfs data\n' > '$work/t/sub/file'"
            "chmod 0640 '$work/t/sub/file'"
            "chown 1234:4321 '$work/t/sub/file'"
            "ln -s sub/file '$work/t/link'"
            "ln '$work/t/sub/file' '$work/t/hard'"
            "mkfifo -m 0600 '$work/t/fifo'"
            "mount --bind '$shared' '$work/b'"
            "mount -o remount,bind,ro,nosuid '$work/b'"
            "mount -t proc -o nosuid,nodev proc '$work/p'"
        ) -join ' && '
        $target = Start-InMountNamespace $work $setup
        $before = Get-Mounts $target
        $before["$work/t"].Type | Should -Be 'tmpfs' -Because 'the set-up made it'
        $hostNs = (Get-Item '/proc/self/ns/mnt').LinkTarget
        (Get-Item "/proc/$target/ns/mnt").LinkTarget | Should -Not -Be $hostNs

        $image = Join-Path $work 'image'
        Checkpoint-Process -Id $target -ImagePath $image | Out-Null
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        @(Get-ChildItem $image -Filter 'mountpoints-*.img').Count | Should -Be 1
        @(Get-ChildItem $image -Filter 'tmpfs-dev-*.tar.gz').Count | Should -Be 1 -Because 'the tmpfs only the namespace had is saved with its files'

        $restored = Restore-Process -ImagePath $image
        Register-TestProcess $restored.Id
        $restored.Id | Should -Be $target
        $now = (Get-Item "/proc/$target/ns/mnt").LinkTarget
        $now | Should -Not -Be $hostNs -Because 'it is back in a mount namespace of its own'
        $after = Get-Mounts $target
        $after["$work/t"].Type | Should -Be 'tmpfs'
        $after["$work/t"].Super | Should -Match 'size=4096k' -Because 'its options are saved'
        $after["$work/t"].Super | Should -Match 'mode=751'
        $after["$work/b"].Options | Should -Match '^ro,nosuid' -Because 'the bind keeps its flags'
        $after["$work/b"].Root | Should -Be $before["$work/b"].Root
        $after["$work/p"].Type | Should -Be 'proc'
        $after["$work/p"].Options | Should -Match 'nosuid,nodev'
        $after.Keys.Count | Should -Be $before.Keys.Count -Because 'every mount comes back'
        @(Get-Mounts ([System.Environment]::ProcessId)).Keys | Should -Not -Contain "$work/t" -Because 'nothing reached the host'

        # The tmpfs's files, seen through the restored process's root.
        $inside = "/proc/$target/root$work/t"
        Get-Content "$inside/sub/file" | Should -Be 'tmpfs data'
        Get-ModeBits "$inside/sub/file" | Should -Be '640'
        Get-ModeBits "$inside/sub" | Should -Be '700'
        (& stat -c '%u:%g' "$inside/sub/file") | Should -Be '1234:4321'
        (Get-Item "$inside/link").LinkTarget | Should -Be 'sub/file'
        (& stat -c '%h %i' "$inside/hard") | Should -Be (& stat -c '%h %i' "$inside/sub/file") -Because 'the hard link is one file again'
        (& stat -c '%F' "$inside/fifo") | Should -Be 'fifo'
        Get-Content "/proc/$target/root$work/b/from-host" | Should -Be 'seen from the host'
        Invoke-SelfCheck $target (Join-Path $work 'selfcheck.log') | Should -Match '^OK'
    }

    It 'is restored twice side by side, each copy in its own namespace' {
        # The image of one process restored twice (the first copy ended): nothing of the first namespace is left.
        $work = Join-Path $TestDrive 'mnt-twice'
        New-Item -ItemType Directory -Force "$work/t" | Out-Null
        $target = Start-InMountNamespace $work "mount -t tmpfs tmp '$work/t' && echo one > '$work/t/x'"
        $image = Join-Path $work 'image'
        Checkpoint-Process -Id $target -ImagePath $image | Out-Null
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        foreach ($round in 1..2) {
            $restored = Restore-Process -ImagePath $image
            Get-Content "/proc/$($restored.Id)/root$work/t/x" | Should -Be 'one'
            & kill -s KILL $restored.Id
            Wait-Until { -not (Test-ProcessAlive $restored.Id) } 'the copy to end'
        }
        @(Get-ChildItem ([System.IO.Path]::GetTempPath()) -Filter 'criups-mntns-*' -Directory -ErrorAction Ignore).Count | Should -Be 0 -Because 'the staging directories are removed'
    }

    It 'is refused before freezing, naming the mount, when an overlay is mounted in its namespace' {
        $work = Join-Path $TestDrive 'mnt-overlay'
        New-Item -ItemType Directory -Force "$work/lower", "$work/upper", "$work/work", "$work/o" | Out-Null
        $target = Start-InMountNamespace $work "mount -t overlay overlay -o 'lowerdir=$work/lower,upperdir=$work/upper,workdir=$work/work' '$work/o'"
        $failure = Get-Refusal $target (Join-Path $work 'image')
        $failure.FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $failure.Exception.Message | Should -BeLike "*overlay mounted at $work/o*"
        Invoke-SelfCheck $target (Join-Path $work 'selfcheck.log') | Should -Match '^OK'
    }

    It 'works in a directory of its tmpfs and holds a file of it open: both come back, opened in its restored namespace' {
        $work = Join-Path $TestDrive 'mnt-cwd'
        New-Item -ItemType Directory -Force $work | Out-Null
        # sleep works in a tmpfs mounted over a directory of the host (the same path is another directory outside)
        # and holds a file of it open: both are saved with their mount and reopened through the namespace.
        $target = Start-TestTarget -Program $Unshare -Arguments @('--mount', '--propagation', 'private', '/bin/sh', '-c',
            "umount -l /run/netns 2>/dev/null; mkdir -p '$work/t' && mount -t tmpfs tmp '$work/t' && cd '$work/t' && echo kept > f && exec 3<f && echo `$`$ > '$work/ready' && exec sleep 1000") -WorkDirectory $work
        $image = Join-Path $TestDrive 'mnt-cwd-image'
        Checkpoint-Process -Id $target -ImagePath $image | Out-Null
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        $restored = Restore-Process -ImagePath $image
        Register-TestProcess $restored.Id
        (Get-Item "/proc/$($restored.Id)/cwd").LinkTarget | Should -Be "$work/t"
        (Get-Item "/proc/$($restored.Id)/fd/3").LinkTarget | Should -Be "$work/t/f"
        (& stat -L -c '%d:%i' "/proc/$($restored.Id)/fd/3") | Should -Be (& stat -c '%d:%i' "/proc/$($restored.Id)/root$work/t/f") -Because 'it is the file of the restored tmpfs'
        (& stat -L -c '%d:%i' "/proc/$($restored.Id)/cwd") | Should -Be (& stat -c '%d:%i' "/proc/$($restored.Id)/root$work/t")
        Get-Content "/proc/$($restored.Id)/fd/3" | Should -Be 'kept'
        Test-Path "$work/t/f" | Should -BeFalse -Because 'nothing was made on the host'
    }

    It 'is refused before freezing when it works in a directory that a mount hides in its namespace' {
        $work = Join-Path $TestDrive 'mnt-hidden'
        New-Item -ItemType Directory -Force $work | Out-Null
        # sleep entered a host directory, then a tmpfs was mounted over it: its path names the tmpfs in the namespace.
        $target = Start-TestTarget -Program $Unshare -Arguments @('--mount', '--propagation', 'private', '/bin/sh', '-c',
            "umount -l /run/netns 2>/dev/null; mkdir -p '$work/t' && cd '$work/t' && mount -t tmpfs tmp '$work/t' && echo `$`$ > '$work/ready' && exec sleep 1000") -WorkDirectory $work
        $failure = Get-Refusal $target (Join-Path $TestDrive 'mnt-hidden-image')
        $failure.FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $failure.Exception.Message | Should -BeLike "*its working directory is '$work/t', which names another file in its mount namespace*"
        Test-ProcessAlive $target | Should -BeTrue
    }

    It 'needs -ExternalMount for a filesystem the host does not have, and binds what it names' {
        $work = Join-Path $TestDrive 'mnt-external'
        $disk = Join-Path $TestDrive 'disk.img'
        New-Item -ItemType Directory -Force "$work/d" | Out-Null
        & truncate -s 8M $disk
        & mkfs.ext4 -q -F $disk 2>&1 | Out-Null
        $target = Start-InMountNamespace $work "mount -o loop '$disk' '$work/d' && echo inside > '$work/d/f'"
        $image = Join-Path $work 'image'
        Checkpoint-Process -Id $target -ImagePath $image | Out-Null
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        $failure = $null
        try { Restore-Process -ImagePath $image -ErrorAction Stop | Out-Null } catch { $failure = $_ }
        $failure.FullyQualifiedErrorId | Should -Be 'ImageIncompatible,CriuPS.Cmdlets.RestoreProcessCommand'
        $failure.Exception.Message | Should -BeLike "*mounted at $work/d*"
        Test-ProcessAlive $target | Should -BeFalse -Because 'nothing was created'
        $elsewhere = Join-Path $TestDrive 'replacement'
        New-Item -ItemType Directory -Force $elsewhere | Out-Null
        Set-Content "$elsewhere/f" 'named by the user'
        $restored = Restore-Process -ImagePath $image -ExternalMount @{ "$work/d" = $elsewhere }
        Register-TestProcess $restored.Id
        Get-Content "/proc/$($restored.Id)/root$work/d/f" | Should -Be 'named by the user'
        Invoke-SelfCheck $restored.Id (Join-Path $work 'selfcheck.log') | Should -Match '^OK'
    }
}
