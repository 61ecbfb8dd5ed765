# The world of a process: CriuPS saves the UTS, IPC, network, mount and time namespaces (MountNamespaces.Tests.ps1
# covers the mounts, TimeNamespaces.Tests.ps1 the clocks) and no other namespace yet, so a process
# in any other namespace than the engine's (its cgroup namespace included) is refused before anything is frozen, naming
# what differs, and runs on untouched; one in a network namespace of its own comes back in a new one made from the
# image (NetworkNamespaces.Tests.ps1 covers devices, addresses and sockets; Ipc.Tests.ps1 the IPC objects). Its cgroups
# are saved: a process or a thread in other cgroups than the engine's comes back in them (Cgroups.Tests.ps1 has the
# rest).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:SelfCheck = Get-TestTarget 'selfcheck'
    # launch runs a program by its path.
    $script:Unshare = (Get-Command unshare -CommandType Application | Select-Object -First 1).Source
    $script:Nsenter = (Get-Command nsenter -CommandType Application | Select-Object -First 1).Source

    # The refusal of a checkpoint of $Target, after which the target must run on as it was: not stopped, not traced.
    function Get-Refusal([int]$Target, [string]$Image) {
        $failure = $null
        try { Checkpoint-Process -Id $Target -ImagePath $Image -ErrorAction Stop | Out-Null }
        catch { $failure = $_ }
        $failure | Should -Not -BeNullOrEmpty -Because 'the checkpoint must be refused'
        Test-Path $Image | Should -BeFalse -Because 'nothing is written'
        Test-ProcessAlive $Target | Should -BeTrue
        (Get-Content "/proc/$Target/status" | Where-Object { $_ -match '^(State|TracerPid):' }) -join ' ' | Should -Match 'State:\s+[RS] .*TracerPid:\s+0' -Because 'it runs on, neither stopped nor traced'
        $failure
    }
}

AfterAll { Stop-TestProcesses }

Describe 'A process in namespaces of its own' {
    It 'is refused before freezing when its <Shown> is not the engine''s, naming it, and runs on' -ForEach @(
        # No process runs in it yet: its link cannot be read.
        @{ Flags = @('--pid'); Shown = 'PID namespace for its children'; Link = 'pid_for_children'; Message = 'it made a PID namespace for its children, in which no process runs yet' }
        @{ Flags = @('--cgroup'); Shown = 'cgroup namespace'; Link = 'cgroup' }
        @{ Flags = @('--user', '--map-root-user'); Shown = 'user namespace'; Link = 'user' }
    ) {
        $work = Join-Path $TestDrive "ns-$Link"
        $target = Start-TestTarget -Program $Unshare -Arguments ($Flags + @($SelfCheck, 'sleep', $work)) -WorkDirectory $work
        $theirs = (Get-Item "/proc/$target/ns/$Link").LinkTarget
        $theirs | Should -Not -Be (Get-Item "/proc/self/ns/$Link").LinkTarget -Because 'unshare made the namespace'
        $failure = Get-Refusal $target (Join-Path $work 'image')
        $failure.FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $failure.Exception.Message | Should -BeLike '*nothing was frozen*'
        $failure.Exception.Message | Should -Match ([regex]::Escape($Message ?? "its $Shown ($theirs) is not the one CriuPS runs in"))
        Invoke-SelfCheck $target (Join-Path $work 'selfcheck.log') | Should -Match '^OK'
    }

    It 'comes back whole when a child is the init of a PID namespace with its own mounts, UTS, IPC and network namespaces' {
        # What was tried before the namespaces were saved: unshare -p -f --mount-proc -m -u -i -n sleep, checkpointed
        # by its parent, came back in the host's PID, mount and network namespaces without a word. Every namespace is
        # made again now: the child is PID 1 of a new PID namespace, whose own /proc its mount namespace shows.
        $work = Join-Path $TestDrive 'all-together'
        New-Item -ItemType Directory -Force $work | Out-Null
        # The host's /run/netns mounts (other sessions' namespaces, which may go before the restore) are let go inside.
        $inner = 'umount -l /run/netns 2>/dev/null; hostname criups-all; exec sleep 1000'
        $unshare = Start-TestTarget -Program /bin/sh -WorkDirectory $work -Arguments @('-c',
            "echo `$`$ > '$work/ready'; exec '$Unshare' --pid --fork --mount-proc --mount --uts --ipc --net /bin/sh -c '$inner'")
        Wait-Until { (Get-Content "/proc/$unshare/task/$unshare/children" -Raw -ErrorAction Ignore) -match '\d' } 'unshare to start its child'
        $child = [int](Get-Content "/proc/$unshare/task/$unshare/children" -Raw).Trim()
        Register-TestProcess $child
        Wait-Until { (Get-Content "/proc/$child/cmdline" -Raw) -like 'sleep*' } 'the child to run sleep'
        $links = 'pid', 'mnt', 'uts', 'ipc', 'net'
        $image = Checkpoint-Process -Id $unshare -ImagePath (Join-Path $work 'image')
        Wait-Until { -not (Test-ProcessAlive $child) } 'the checkpointed tree to end'
        $restored = $image | Restore-Process
        Register-TestProcess $restored.Id
        $init = [int](Get-Content "/proc/$($restored.Id)/task/$($restored.Id)/children" -Raw).Trim()
        foreach ($link in $links) {
            $now = (Get-Item "/proc/$init/ns/$link").LinkTarget
            $now | Should -Not -Be (Get-Item "/proc/self/ns/$link").LinkTarget -Because "its $link namespace is its own again"
        }
        (Get-Content "/proc/$init/status" | Where-Object { $_ -like 'NSpid:*' }) | Should -Match '\s1$' -Because 'it is PID 1 of its namespace'
        & nsenter "--target=$init" --mount --pid cat /proc/1/cmdline | Should -Match '^sleep' -Because 'its /proc is its PID namespace''s'
        & nsenter "--target=$init" --uts hostname | Should -Be 'criups-all'
        (Get-Content "/proc/$init/mountinfo") -match ' /proc .* - proc ' | Should -Not -BeNullOrEmpty -Because 'its mount namespace has a /proc'
        Get-Content "/proc/$init/mountinfo" | Should -Not -Be (Get-Content /proc/self/mountinfo)
    }
}

Describe 'A child in another namespace than the root, of a kind CriuPS saves once for the tree' {
    It 'is refused when a child is in another <Shown> than the root (CriuPS saves one, the root''s, as CRIU)' -ForEach @(
        @{ Link = 'ipc'; Shown = 'IPC namespace' }
        @{ Link = 'uts'; Shown = 'UTS namespace' }
        @{ Link = 'net'; Shown = 'network namespace' }
    ) {
        $work = Join-Path $TestDrive "$Link-child"
        New-Item -ItemType Directory $work | Out-Null
        $shell = Start-TestTarget -Program /bin/sh -Arguments @('-c', "echo `$`$ > '$work/ready'; '$Unshare' --$Link sleep 1000 & wait") -WorkDirectory $work
        Wait-Until { (Get-Content "/proc/$shell/task/$shell/children" -Raw -ErrorAction Ignore) -match '\d' } 'the shell to start its child'
        $child = [int](Get-Content "/proc/$shell/task/$shell/children" -Raw).Trim()
        Register-TestProcess $child
        # The child is the shell's fork until unshare has run: a checkpoint before would find nothing to refuse.
        Wait-Until { (Get-Item "/proc/$child/ns/$Link").LinkTarget -ne (Get-Item "/proc/$shell/ns/$Link").LinkTarget } 'the child to be in a namespace of its own'
        $failure = Get-Refusal $shell (Join-Path $work 'image')
        $failure.FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $failure.Exception.Message | Should -BeLike "*- process $child`: its $Shown * is not the root's *: CriuPS saves one $Shown, the root's, as CRIU does*"
    }
}

Describe 'A thread in another namespace than its process' {
    It 'is refused, naming the thread and the namespace (CriuPS restores one set of namespaces per process)' {
        $work = Join-Path $TestDrive 'thread-uts'
        $target = Start-TestTarget -Program (Get-TestTarget 'threadns') -WorkDirectory $work
        $apart = Get-ChildItem "/proc/$target/task" | ForEach-Object { [int]$_.Name } | Where-Object {
            (Get-Item "/proc/$target/task/$_/ns/uts").LinkTarget -ne (Get-Item "/proc/$target/ns/uts").LinkTarget }
        $apart | Should -HaveCount 1 -Because 'one thread unshared its UTS namespace'
        $failure = Get-Refusal $target (Join-Path $work 'image')
        $failure.FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $failure.Exception.Message | Should -BeLike "*its thread $apart is in another uts namespace (uts:``[*``]) than the process: CriuPS restores one set of namespaces per process*"
    }
}

Describe 'A tree in an IPC namespace of its own' {
    It 'comes back in a new IPC namespace, and verifies itself (the objects: Ipc.Tests.ps1)' {
        $work = Join-Path $TestDrive 'ipc'
        $target = Start-TestTarget -Program $Unshare -Arguments @('--ipc', $SelfCheck, 'sleep', $work) -WorkDirectory $work
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image')
        Get-ChildItem $image.Path -Filter 'ipcns-var-*.img' | Should -Not -BeNullOrEmpty -Because 'the namespace is saved as CRIU saves it'
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        $restored = $image | Restore-Process
        Register-TestProcess $restored.Id
        (Get-Item "/proc/$target/ns/ipc").LinkTarget | Should -Not -Be (Get-Item /proc/self/ns/ipc).LinkTarget -Because 'it has an IPC namespace of its own again'
        Invoke-SelfCheck $target (Join-Path $work 'selfcheck.log') | Should -Match '^OK'
    }
}

Describe 'A tree in a UTS namespace of its own' {
    It 'comes back in a new UTS namespace with its host and domain name, and verifies itself' {
        $work = Join-Path $TestDrive 'uts'
        New-Item -ItemType Directory $work | Out-Null
        # The names are set inside, then the self-checking target runs there.
        $script = "hostname criups-uts-$PID; domainname criups.test; exec '$SelfCheck' sleep '$work'"
        $target = Start-TestTarget -Program $Unshare -Arguments @('--uts', '/bin/sh', '-c', $script) -WorkDirectory $work
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image')
        Get-ChildItem $image.Path -Filter 'utsns-*.img' | Should -Not -BeNullOrEmpty -Because 'the names are saved as CRIU saves them'
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        $restored = $image | Restore-Process
        Register-TestProcess $restored.Id
        $after = (Get-Item "/proc/$target/ns/uts").LinkTarget
        $after | Should -Not -Be (Get-Item /proc/self/ns/uts).LinkTarget -Because 'it has a UTS namespace of its own again'
        & nsenter "--target=$target" --uts hostname | Should -Be "criups-uts-$PID"
        & nsenter "--target=$target" --uts domainname | Should -Be 'criups.test'
        & hostname | Should -Not -Be "criups-uts-$PID" -Because 'the host keeps its name'
        Invoke-SelfCheck $target (Join-Path $work 'selfcheck.log') | Should -Match '^OK'
    }
}

Describe 'A process in a network namespace of its own' {
    It 'is restored into a new namespace made from the image once its own is gone, and verifies itself' {
        $work = Join-Path $TestDrive 'netns'
        $netns = "criups-ns$PID"
        & ip netns add $netns
        & ip -n $netns link set lo up
        if ($LASTEXITCODE -ne 0) { throw "ip netns add $netns failed" }
        try {
            $link = "net:[$(& stat -L -c %i "/run/netns/$netns")]"
            $target = Start-TestTarget -Program $Nsenter -Arguments @("--net=/run/netns/$netns", $SelfCheck, 'sleep', $work) -WorkDirectory $work
            (Get-Item "/proc/$target/ns/net").LinkTarget | Should -Be $link
            $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image')
            Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
            & ip netns delete $netns
            $restored = $image | Restore-Process
            Register-TestProcess $restored.Id
            $restored.Id | Should -Be $target
            $after = (Get-Item "/proc/$target/ns/net").LinkTarget
            $after | Should -Not -Be (Get-Item /proc/self/ns/net).LinkTarget -Because 'it has a network namespace of its own again, not the restorer''s'
            Get-Content (Join-Path $image.Path 'restore.log') -Raw | Should -Match "process $target`: in the network namespace $([regex]::Escape($after))"
            & $Nsenter "--net=/proc/$target/ns/net" ip -br link show lo | Should -Match '^lo\s+UNKNOWN' -Because 'its loopback is up again'
            Invoke-SelfCheck $target (Join-Path $work 'selfcheck.log') | Should -Match '^OK'
        }
        finally { & ip netns delete $netns 2>$null }
    }
}

Describe 'A process in other cgroups than the engine''s' {
    BeforeAll {
        # cgroup v1's pids hierarchy, as this machine mounts it; a process or a single thread is moved into a child.
        $script:Hierarchy = '/sys/fs/cgroup/pids'
        $script:Cgroup = Join-Path $Hierarchy "criups-t$PID"
        New-Item -ItemType Directory $Cgroup | Out-Null
        $script:Own = ((Get-Content /proc/self/cgroup | Where-Object { $_ -match '^\d+:pids:' }) -split ':', 3)[2]
    }
    AfterAll {
        Stop-TestProcesses
        # A cgroup goes with rmdir once its last task has ended.
        Wait-Until { -not (Get-Content (Join-Path $Cgroup 'tasks')) } 'the cgroup to empty'
        & rmdir $Cgroup
    }

    It 'is checkpointed and restored back into that cgroup' {
        $work = Join-Path $TestDrive 'cgroup'
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        Set-Content (Join-Path $Cgroup 'cgroup.procs') $target
        Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image') | Out-Null
        $restored = Restore-Process (Join-Path $work 'image')
        Register-TestProcess $restored.Id
        (Get-Content "/proc/$target/cgroup" | Where-Object { $_ -match '^\d+:pids:' }) | Should -Match ":/criups-t$PID$"
        $restored.Cgroups | Should -Contain "pids:/criups-t$PID"
        Invoke-SelfCheck $target (Join-Path $work 'selfcheck.log') | Should -Match '^OK'
    }

    It 'is restored with a thread that sat in another cgroup back in it (cgroup v1 places threads one by one)' {
        $work = Join-Path $TestDrive 'thread-cgroup'
        $target = Start-TestTarget -Program (Get-TestTarget 'threads') -Arguments $work -WorkDirectory $work
        $thread = Get-ChildItem "/proc/$target/task" | ForEach-Object { [int]$_.Name } | Where-Object { $_ -ne $target } | Select-Object -First 1
        Set-Content (Join-Path $Cgroup 'tasks') $thread
        Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image') | Out-Null
        $restored = Restore-Process (Join-Path $work 'image')
        Register-TestProcess $restored.Id
        (Get-Content "/proc/$target/task/$thread/cgroup" | Where-Object { $_ -match '^\d+:pids:' }) | Should -Match ":/criups-t$PID$"
        (Get-Content "/proc/$target/cgroup" | Where-Object { $_ -match '^\d+:pids:' }) | Should -Match ":$([regex]::Escape($Own))$" -Because 'the process itself stayed in the engine''s'
        Invoke-SelfCheck $target (Join-Path $work 'threads.log') | Should -Match '^OK'
    }
}
