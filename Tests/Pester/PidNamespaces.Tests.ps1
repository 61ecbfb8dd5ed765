# PID namespaces. Restore-Process -NewPidNamespace restores an ordinary process tree into a PID namespace of its own,
# at its saved PIDs inside, under criups-init (PID 1), with a /proc of its own: the same image side by side many
# times. A tree made with `unshare --pid --fork` is saved with its PIDs at every level and comes back in new PID
# namespaces with the same PIDs inside. The target (Tests/Targets/pidcheck.c) checks itself: getpid() is the PID it
# noted at start, NSpid says so, its children keep their PIDs and stay its running children, and it lists /proc.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:PidCheck = Get-TestTarget 'pidcheck'

    # The last line the target logs after SIGUSR1, sent to the PID this session sees.
    function Invoke-PidCheck([int]$HostPid, [string]$Work) { Invoke-SelfCheck $HostPid (Join-Path $Work 'pidcheck.log') }

    # The PIDs of a process as /proc/PID/status's NSpid lists them, from this namespace inwards.
    function Get-NsPid([int]$HostPid) { (((Get-Content "/proc/$HostPid/status") -match '^NSpid:') -replace '^NSpid:\s*', '') -split '\s+' | ForEach-Object { [int]$_ } }

    # Starts `unshare --pid --fork [setsid] pidcheck WORK 2` (launch.c: detached, in a session of its own) and returns
    # the PIDs this session sees of unshare and of its child, the namespace's init. pidcheck writes the PID it sees
    # (1) into WORK/ready, which Start-TestTarget would take for a PID here.
    function Start-NamespacedTarget([string]$Work, [switch]$NewSession) {
        New-Item -ItemType Directory -Force $Work | Out-Null
        $command = @('/usr/bin/unshare', '--pid', '--fork') + $(if ($NewSession) { @('/usr/bin/setsid') } else { @() }) + @($PidCheck, $Work, '2')
        & (Get-TestTarget 'launch') $Work @command
        Wait-Until { Test-Path (Join-Path $Work 'ready') } "pidcheck to start in $Work"
        $init = Get-ChildItem /proc -Directory | Where-Object Name -Match '^\d+$' | Where-Object {
            (Get-Content "$($_.FullName)/cmdline" -Raw -ErrorAction Ignore) -like "$PidCheck`0$Work`0*" -and ((Get-Content "$($_.FullName)/status" -ErrorAction Ignore) -match '^NSpid:\s+\d+\s+1$')
        } | ForEach-Object { [int]$_.Name } | Select-Object -First 1
        $unshare = [int]((Get-Content "/proc/$init/stat" -Raw) -replace '^.*\) \S+ (\d+) .*$', '$1')
        Register-TestProcess $unshare
        Register-TestProcess $init
        [pscustomobject]@{ Unshare = $unshare; Init = $init }
    }

    function Get-Children([int]$HostPid) { @((Get-Content "/proc/$HostPid/task/$HostPid/children" -Raw).Trim() -split ' ' | Where-Object { $_ } | ForEach-Object { [int]$_ }) }
}

AfterAll { Stop-TestProcesses }

Describe 'Restore-Process -NewPidNamespace' {
    BeforeAll {
        $script:Work = Join-Path $TestDrive 'warm'
        $script:Target = Start-TestTarget -Program $PidCheck -Arguments $Work, 2 -WorkDirectory $Work
        $script:Before = Invoke-PidCheck $Target $Work
        $Before | Should -Match "^OK pid=$Target "
        $script:SavedChildren = ($Before -replace '^.* children=(\S+) .*$', '$1')
        $script:Image = Checkpoint-Process -Id $Target -ImagePath (Join-Path $Work 'image')
        Wait-Until { -not (Test-ProcessAlive $Target) } 'the checkpointed process to end'
    }

    It 'restores one image five times side by side, each copy at its saved PIDs in a namespace of its own, verifying itself' {
        $copies = @(1..5 | ForEach-Object { Restore-Process -ImagePath $Image.Path -NewPidNamespace -ErrorAction Stop })
        $copies | ForEach-Object { Register-TestProcess $_.Id; Register-TestProcess $_.PidNamespaceInit }
        @($copies.Id | Sort-Object -Unique).Count | Should -Be 5 -Because 'each copy has a host PID of its own'
        @($copies.PidNamespaceInit | Sort-Object -Unique).Count | Should -Be 5
        foreach ($copy in $copies) {
            $copy.NamespacePid | Should -Be $Target
            $copy.HostPid | Should -Be $copy.Id
            (Get-NsPid $copy.Id) | Should -Be @($copy.Id, $Target) -Because 'the kernel sees the saved PID inside'
            (Get-NsPid $copy.PidNamespaceInit) | Should -Be @($copy.PidNamespaceInit, 1) -Because 'criups-init is PID 1 of the namespace'
            (Get-Content "/proc/$($copy.Id)/comm") | Should -Be 'pidcheck'
            (Get-Content "/proc/$($copy.PidNamespaceInit)/comm") | Should -Be 'criups-init'
            $copy.Parent.Id | Should -Be $copy.PidNamespaceInit -Because 'the root is the init''s child'
            (Get-Item "/proc/$($copy.Id)/ns/pid").LinkTarget | Should -Not -Be (Get-Item /proc/self/ns/pid).LinkTarget
            (Get-Item "/proc/$($copy.Id)/ns/mnt").LinkTarget | Should -Not -Be (Get-Item /proc/self/ns/mnt).LinkTarget
            $check = Invoke-PidCheck $copy.Id $Work
            $check | Should -Be "OK pid=$Target ppid=1 children=$SavedChildren nspid=$Target procs=1,$Target,$SavedChildren" `
                -Because 'getpid(), getppid(), the children and /proc inside are the namespace''s'
        }
        Test-Path "/proc/$PID" | Should -BeTrue -Because 'this namespace''s /proc is untouched'
        (Get-Content /proc/1/status) -match '^NSpid:\s*1$' | Should -Not -BeNullOrEmpty
        $copies | ForEach-Object { Stop-Process -Id $_.Id -Force }
        foreach ($copy in $copies) {
            Wait-Until { -not (Test-ProcessAlive $copy.PidNamespaceInit) } "the init of copy $($copy.Id) to end with it"
        }
    }

    It 'ends the copy''s namespace when the copy is stopped by its host PID' {
        $copy = Restore-Process -ImagePath $Image.Path -NewPidNamespace
        Register-TestProcess $copy.Id
        $children = Get-Children $copy.Id
        $children.Count | Should -Be 2
        Stop-Process -Id $copy.Id -Force
        Wait-Until { -not (Test-ProcessAlive $copy.PidNamespaceInit) } 'the init to end with the root'
        # The kernel kills the rest of the namespace as its init exits, and they are reaped a moment later.
        Wait-Until { -not ($children | Where-Object { Test-ProcessAlive $_ }) } 'the namespace to end with its init' -TimeoutSeconds 10
        Wait-Until { $null -ne $copy.ExitStatus } 'the exit status'
        $copy.ExitStatus | Should -Be 137 -Because 'the init exits with the root''s status: killed by SIGKILL'
    }

    It 'ends everything in the namespace when its init is killed' {
        $copy = Restore-Process -ImagePath $Image.Path -NewPidNamespace
        Register-TestProcess $copy.Id
        $children = Get-Children $copy.Id
        & kill -s KILL $copy.PidNamespaceInit
        Wait-Until { -not (Test-ProcessAlive $copy.Id) } 'the root to end with its namespace'
        foreach ($child in $children) { Wait-Until { -not (Test-ProcessAlive $child) } "child $child to end" }
    }

    It 'forwards the signals its init gets to the tree, and the init exits with the root''s status' {
        $copy = Restore-Process -ImagePath $Image.Path -NewPidNamespace
        Register-TestProcess $copy.Id
        $log = Join-Path $Work 'pidcheck.log'
        $before = @(Get-Content $log).Count
        & kill -s USR1 $copy.PidNamespaceInit
        Wait-Until { @(Get-Content $log).Count -gt $before } 'the SIGUSR1 forwarded by the init to be answered'
        @(Get-Content $log)[$before] | Should -Match "^OK pid=$Target ppid=1 "
        & kill -s TERM $copy.PidNamespaceInit
        Wait-Until { -not (Test-ProcessAlive $copy.PidNamespaceInit) } 'the init to end with the root'
        @(Get-Content $log)[-1] | Should -Be "TERM pid=$Target"
        Wait-Until { $null -ne $copy.ExitStatus } 'the exit status'
        $copy.ExitStatus | Should -Be 3 -Because 'pidcheck exits with 3 on SIGTERM'
    }

    It 'is refused with -LazyPages before anything is created' {
        $failure = $null
        try { Restore-Process -ImagePath $Image.Path -NewPidNamespace -LazyPages -ErrorAction Stop } catch { $failure = $_ }
        $failure.FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.RestoreProcessCommand'
        $failure.Exception.Message | Should -BeLike '*-NewPidNamespace cannot be combined with -LazyPages*'
        @(Get-RestoreHosts).Count | Should -Be 0
    }
}

Describe 'A tree in PID namespaces of its own (unshare --pid --fork)' {
    It 'is checkpointed from its init and comes back as PID 1 of a new namespace, seeing the same PIDs' {
        $work = Join-Path $TestDrive 'init-root'
        $started = Start-NamespacedTarget $work -NewSession
        (Get-NsPid $started.Init) | Should -Be @($started.Init, 1)
        $before = Invoke-PidCheck $started.Init $work
        $before | Should -Match '^OK pid=1 ppid=0 children=2,3 '
        $image = Checkpoint-Process -Id $started.Init -ImagePath (Join-Path $work 'image')
        Assert-ReadsAsReturned $image
        $tree = Import-CheckpointImageFile (Join-Path $image.Path 'pstree.img')
        @($tree.entries.pid) | Should -Be @(1, 2, 3) -Because 'pstree.img keeps the PIDs of the root''s namespace, as CRIU does'
        Wait-Until { -not (Test-ProcessAlive $started.Init) } 'the checkpointed init to end'
        $restored = Restore-Process -ImagePath $image.Path
        Register-TestProcess $restored.Id
        $restored.NamespacePid | Should -Be 1
        $restored.PidNamespaceInit | Should -Be $restored.Id -Because 'the restored root is its namespace''s init'
        (Get-NsPid $restored.Id) | Should -Be @($restored.Id, 1)
        (Get-Item "/proc/$($restored.Id)/ns/pid").LinkTarget | Should -Not -Be (Get-Item /proc/self/ns/pid).LinkTarget
        $children = Get-Children $restored.Id
        foreach ($child in $children) { (Get-NsPid $child)[1] | Should -BeIn 2, 3 }
        Invoke-PidCheck $restored.Id $work | Should -Match "^OK pid=1 ppid=0 children=2,3 nspid=$($restored.Id)\s+1 " -Because 'getpid(), getppid() and its children are as before'
        Stop-Process -Id $restored.Id -Force
        foreach ($child in $children) { Wait-Until { -not (Test-ProcessAlive $child) } "child $child to end with the namespace's init" }
    }

    It 'is checkpointed from unshare, whose child is the init of a namespace, and comes back with the PIDs of every level' {
        $work = Join-Path $TestDrive 'init-child'
        $started = Start-NamespacedTarget $work
        Invoke-PidCheck $started.Init $work | Should -Match '^OK pid=1 ppid=0 children=2,3 '
        $image = Checkpoint-Process -Id $started.Unshare -ImagePath (Join-Path $work 'image')
        Assert-ReadsAsReturned $image
        $tree = Import-CheckpointImageFile (Join-Path $image.Path 'pstree.img')
        @($tree.entries.pid)[0..1] | Should -Be @($started.Unshare, $started.Init)
        @($tree.entries.criups_ns_pid | Where-Object { $null -ne $_ }) | Should -Be @(1, 2, 3) -Because 'the PIDs inside the namespace are kept'
        Wait-Until { -not (Test-ProcessAlive $started.Unshare) } 'the checkpointed unshare to end'
        Wait-Until { -not (Test-ProcessAlive $started.Init) } 'its child to end'
        $restored = Restore-Process -ImagePath $image.Path
        Register-TestProcess $restored.Id
        $restored.Id | Should -Be $started.Unshare
        Get-Children $restored.Id | Should -Be $started.Init -Because 'the init keeps its PID out here too'
        (Get-NsPid $started.Init) | Should -Be @($started.Init, 1)
        (Get-Item "/proc/$($started.Init)/ns/pid").LinkTarget | Should -Not -Be (Get-Item /proc/self/ns/pid).LinkTarget
        (Get-Item "/proc/$($restored.Id)/ns/pid_for_children").LinkTarget | Should -Be (Get-Item "/proc/$($started.Init)/ns/pid").LinkTarget `
            -Because 'unshare''s children are born in the namespace it made, as before'
        Invoke-PidCheck $started.Init $work | Should -Match "^OK pid=1 ppid=0 children=2,3 nspid=$($started.Init)\s+1 "
    }

    It 'is refused from a process of the namespace that is not its init, which is not in the tree, and runs on' {
        $work = Join-Path $TestDrive 'not-init'
        $started = Start-NamespacedTarget $work
        $child = (Get-Children $started.Init)[0]
        $theirs = (Get-Item "/proc/$child/ns/pid").LinkTarget
        $failure = $null
        try { Checkpoint-Process -Id $child -ImagePath (Join-Path $work 'image') -ErrorAction Stop } catch { $failure = $_ }
        $failure.FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $failure.Exception.Message | Should -Match "its PID namespace \($([regex]::Escape($theirs))\) is not the one CriuPS runs in \(pid:\[\d+\]\), and its init is not in the tree"
        Test-Path (Join-Path $work 'image') | Should -BeFalse
        Invoke-PidCheck $started.Init $work | Should -Match '^OK pid=1 ' -Because 'the tree runs on'
    }
}
