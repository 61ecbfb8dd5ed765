# Cgroups: every process and thread of a restored tree goes back into its saved cgroups, in every cgroup v1 hierarchy
# and in cgroup v2 (this machine mounts v1 controllers under /sys/fs/cgroup/<controller> and v2 at
# /sys/fs/cgroup/unified); a cgroup deleted since the checkpoint is made again with its saved limits; a restore that
# fails removes the cgroups it made; -FreezeCgroup freezes a fork loop through the freezer (v1) or cgroup.freeze (v2)
# and catches it whole, thawing it on every way out, the death of the tool included. Test cgroups are named
# criups-test-<this PID>-* and removed by the tests.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:SelfCheck = Get-TestTarget 'selfcheck'
    $script:CgroupThreads = Get-TestTarget 'cgroupthreads'
    $script:Bash = (Get-Command bash -CommandType Application | Select-Object -First 1).Source
    $script:Root = '/sys/fs/cgroup'
    $script:Made = [System.Collections.Generic.List[string]]::new()

    # Makes the cgroup NAME (criups-test-PID-NAME) in each hierarchy given ('cpu', 'memory', 'unified'...); returns its path.
    function New-TestCgroup([string]$Name, [string[]]$Hierarchies) {
        foreach ($hierarchy in $Hierarchies) {
            $directory = "$Root/$hierarchy/criups-test-$PID-$Name"
            & mkdir -p $directory
            $script:Made.Add($directory)
        }
        "/criups-test-$PID-$Name"
    }

    # Removes a cgroup once its last task has gone (rmdir fails while one is in it); whatever still runs in it (a
    # fork loop's children that outlived their parent) is killed.
    function Remove-TestCgroup([string]$Directory) {
        if (-not (Test-Path $Directory)) { return }
        Get-ChildItem $Directory -Directory | ForEach-Object { Remove-TestCgroup $_.FullName }
        if (Test-Path "$Directory/freezer.state") { Set-Content "$Directory/freezer.state" THAWED -NoNewline }
        if (Test-Path "$Directory/cgroup.freeze") { Set-Content "$Directory/cgroup.freeze" 0 -NoNewline }
        Wait-Until { Get-Content "$Directory/cgroup.procs" | ForEach-Object { & kill -s KILL $_ 2>$null }; -not (Get-Content "$Directory/cgroup.procs") } "the cgroup $Directory to empty"
        Wait-Until { & rmdir $Directory 2>$null; -not (Test-Path $Directory) } "rmdir $Directory"
    }

    function Add-ToCgroup([string]$Directory, [int]$Id) { Set-Content "$Directory/cgroup.procs" $Id -NoNewline }

    # The cgroup path of process ID (or thread ID of PROCESS) in the hierarchy named as /proc/PID/cgroup names it ('' for v2).
    function Get-CgroupOf([int]$Id, [string]$Hierarchy, [int]$Thread = 0) {
        $file = if ($Thread) { "/proc/$Id/task/$Thread/cgroup" } else { "/proc/$Id/cgroup" }
        foreach ($line in Get-Content $file) {
            $fields = $line -split ':', 3
            if ($fields[1] -eq $Hierarchy) { return $fields[2] }
        }
    }

    # The live processes of the tree of ROOT, from /proc (pids).
    function Get-TreeIds([int]$Root) { @(Get-ProcessTreeLayout $Root | ForEach-Object { [int]$_.Split(' ')[0] }) }

    # A shell loop that forks a child every few milliseconds (each sleeps long: the tree only grows, and every process
    # of it outlives the restore; the loop waits with bash's read on a FIFO, which forks nothing), started in the
    # cgroup at DIRECTORY before its first fork; returns its pid once it has at least MINIMUM processes.
    function Start-ForkLoop([string]$Directory, [string]$Work, [int]$Minimum = 12) {
        New-Item -ItemType Directory -Force $Work | Out-Null
        & mkfifo (Join-Path $Work 'delay')
        $script = 'echo $$ > "$1/cgroup.procs"; exec 3<>"$2/delay"; echo $$ > "$2/ready"; while :; do sleep 1000 & read -t 0.02 -u 3; done'
        $loop = Start-TestTarget -Program $Bash -Arguments '-c', $script, 'forkloop', $Directory, $Work -WorkDirectory $Work
        Wait-Until { (Get-TreeIds $loop).Count -ge $Minimum } "the fork loop to have $Minimum processes" 30
        $loop
    }
}

AfterAll {
    Stop-TestProcesses
    foreach ($directory in $Made) { Remove-TestCgroup $directory }
}

Describe 'Restoring processes into their cgroups' {
    AfterEach { Stop-TestProcesses }

    It 'puts each thread back into its own v1 cgroups (cpu and memory), made again after they were deleted' {
        $work = Join-Path $TestDrive 'threads'
        $a = New-TestCgroup 'thread-a' 'cpu', 'memory'
        $b = New-TestCgroup 'thread-b' 'cpu', 'memory'
        $target = Start-TestTarget -Program $CgroupThreads -Arguments $work, $a, $b -WorkDirectory $work
        $log = Join-Path $work 'cgroupthreads.log'
        Invoke-SelfCheck $target $log | Should -Match '^OK cgroups threads=3'
        $threads = @(Get-ChildItem "/proc/$target/task" | ForEach-Object { [int]$_.Name } | Where-Object { $_ -ne $target })
        @($threads | ForEach-Object { Get-CgroupOf $target 'cpu' $_ } | Sort-Object) | Should -Be @($a, $b) -Because 'the workers placed themselves'

        Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image') | Out-Null
        foreach ($cgroup in $a, $b) { foreach ($hierarchy in 'cpu', 'memory') { Remove-TestCgroup "$Root/$hierarchy$cgroup" } }
        $restored = Restore-Process (Join-Path $work 'image')
        Register-TestProcess $restored.Id

        Invoke-SelfCheck $target $log | Should -Be "OK cgroups threads=3 pid=$target" -Because 'each thread is back in its own cpu and memory cgroups'
        Test-Path "$Root/memory$a" | Should -BeTrue -Because 'the deleted cgroup was made again'
        (Get-CgroupOf $target 'memory') | Should -Be (Get-CgroupOf $PID 'memory') -Because 'the main thread stayed in the cgroup it started in: this session''s'
    }

    It 'makes a deleted v1 cgroup again with its memory and pids limits, and says where the process went' {
        $work = Join-Path $TestDrive 'limits'
        $cgroup = New-TestCgroup 'limits' 'memory', 'pids'
        Set-Content "$Root/memory$cgroup/memory.limit_in_bytes" 67108864 -NoNewline
        Set-Content "$Root/pids$cgroup/pids.max" 37 -NoNewline
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        Add-ToCgroup "$Root/memory$cgroup" $target
        Add-ToCgroup "$Root/pids$cgroup" $target

        Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image') | Out-Null
        Remove-TestCgroup "$Root/memory$cgroup"
        Remove-TestCgroup "$Root/pids$cgroup"
        $restored = Restore-Process (Join-Path $work 'image')
        Register-TestProcess $restored.Id

        Get-CgroupOf $target 'memory' | Should -Be $cgroup
        Get-CgroupOf $target 'pids' | Should -Be $cgroup
        Get-Content "$Root/memory$cgroup/memory.limit_in_bytes" | Should -Be '67108864'
        Get-Content "$Root/pids$cgroup/pids.max" | Should -Be '37'
        $restored.Cgroups | Should -Contain "memory:$cgroup"
        $restored.Cgroups | Should -Contain "pids:$cgroup"
        Invoke-SelfCheck $target (Join-Path $work 'selfcheck.log') | Should -Match '^OK'
    }

    It 'makes a deleted cgroup v2 cgroup again with its limits' {
        $work = Join-Path $TestDrive 'v2'
        $cgroup = New-TestCgroup 'v2' 'unified'
        Set-Content "$Root/unified$cgroup/cgroup.max.descendants" 3 -NoNewline
        Set-Content "$Root/unified$cgroup/cgroup.max.depth" 2 -NoNewline
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        Add-ToCgroup "$Root/unified$cgroup" $target

        Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image') | Out-Null
        Remove-TestCgroup "$Root/unified$cgroup"
        $restored = Restore-Process (Join-Path $work 'image')
        Register-TestProcess $restored.Id

        Get-CgroupOf $target '' | Should -Be $cgroup
        Get-Content "$Root/unified$cgroup/cgroup.max.descendants" | Should -Be '3'
        Get-Content "$Root/unified$cgroup/cgroup.max.depth" | Should -Be '2'
        $restored.Cgroups | Should -Contain "v2:$cgroup"
        Invoke-SelfCheck $target (Join-Path $work 'selfcheck.log') | Should -Match '^OK'
    }

    It 'removes the cgroups it made when the restore fails' {
        $work = Join-Path $TestDrive 'failed'
        $cgroup = New-TestCgroup 'failed' 'memory', 'unified'
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        Add-ToCgroup "$Root/memory$cgroup" $target
        Add-ToCgroup "$Root/unified$cgroup" $target
        Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image') | Out-Null
        Remove-TestCgroup "$Root/memory$cgroup"
        Remove-TestCgroup "$Root/unified$cgroup"

        $env:CRIUPS_FAIL_AT = 'after-cgroups'
        try { { Restore-Process (Join-Path $work 'image') -ErrorAction Stop } | Should -Throw '*after-cgroups*' }
        finally { $env:CRIUPS_FAIL_AT = $null }
        Test-ProcessAlive $target | Should -BeFalse
        Test-Path "$Root/memory$cgroup" | Should -BeFalse -Because 'the cgroup made for the failed restore is removed'
        Test-Path "$Root/unified$cgroup" | Should -BeFalse

        # The same image restores once the failure is gone.
        $restored = Restore-Process (Join-Path $work 'image')
        Register-TestProcess $restored.Id
        Get-CgroupOf $target 'memory' | Should -Be $cgroup
    }

    It 'refuses a hierarchy that is not mounted here, naming it, before anything is made; -CgroupMode Ignore restores anyway' {
        $work = Join-Path $TestDrive 'unmounted'
        $cgroup = New-TestCgroup 'unmounted' 'memory'
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        Add-ToCgroup "$Root/memory$cgroup" $target
        $image = Join-Path $work 'image'
        Checkpoint-Process -Id $target -ImagePath $image | Out-Null
        Remove-TestCgroup "$Root/memory$cgroup"
        # As if the checkpoint came from a machine mounting net_cls, which this one does not: the set names it.
        $file = Join-Path $image 'cgroup.img'
        $cgroups = Import-CheckpointImageFile $file
        $member = $cgroups.entries[0].sets | ForEach-Object { $_.ctls } | Where-Object name -EQ 'memory' | Select-Object -First 1
        $member.name = 'net_cls'
        $cgroups | Export-CheckpointImageFile $file -Force
        Remove-Item (Join-Path $image 'criups-digests.img')

        $failure = $null
        try { Restore-Process $image -ErrorAction Stop | Out-Null } catch { $failure = $_ }
        $failure.FullyQualifiedErrorId | Should -Be 'ImageIncompatible,CriuPS.Cmdlets.RestoreProcessCommand'
        $failure.Exception.Message | Should -BeLike "*net_cls:$cgroup*no cgroup hierarchy net_cls is mounted here*"
        Test-Path "$Root/memory$cgroup" | Should -BeFalse -Because 'nothing was made'

        $restored = Restore-Process $image -CgroupMode Ignore
        Register-TestProcess $restored.Id
        Get-CgroupOf $target 'memory' | Should -Be (Get-CgroupOf $PID 'memory') -Because 'it stays in the restorer''s cgroups'
        Invoke-SelfCheck $target (Join-Path $work 'selfcheck.log') | Should -Match '^OK'
    }
}

Describe 'Checkpoint-Process -FreezeCgroup' {
    AfterEach { Stop-TestProcesses }

    It 'catches a fork loop whole through the <Kind> freezer, thaws it, and restores every process into the cgroup' -ForEach @(
        @{ Kind = 'v1'; Hierarchy = 'freezer'; State = 'freezer.state'; Thawed = 'THAWED' }
        @{ Kind = 'v2'; Hierarchy = 'unified'; State = 'cgroup.freeze'; Thawed = '0' }
    ) {
        $work = Join-Path $TestDrive "bomb-$Kind"
        $cgroup = New-TestCgroup "bomb-$Kind" $Hierarchy
        $directory = "$Root/$Hierarchy$cgroup"
        $loop = Start-ForkLoop $directory $work
        $image = Checkpoint-Process -Id $loop -ImagePath (Join-Path $work 'image') -FreezeCgroup $directory
        $saved = @($image.Processes | Where-Object State -NE 'Zombie' | ForEach-Object Id)
        $saved.Count | Should -BeGreaterOrEqual 12
        (Get-Content "$directory/$State") | Should -Be $Thawed -Because 'the cgroup is thawed once its tasks are seized'
        $image.Processes.Count | Should -Be $image.ProcessCount

        $restored = Restore-Process (Join-Path $work 'image')
        Register-TestProcess $restored.Id
        foreach ($id in $saved) {
            Test-ProcessAlive $id | Should -BeTrue -Because "process $id of the image is restored"
        }
        $members = @(Get-Content "$directory/cgroup.procs" | ForEach-Object { [int]$_ })
        @($saved | Where-Object { $_ -notin $members }) | Should -BeNullOrEmpty -Because 'every restored process is back in the cgroup'
        Wait-Until { (Get-TreeIds $loop).Count -gt $saved.Count } 'the restored loop to fork again'
    }

    It 'refuses a cgroup that holds a process outside the tree, naming it, and leaves everything running thawed' {
        $work = Join-Path $TestDrive 'stranger'
        $cgroup = New-TestCgroup 'stranger' 'freezer'
        $directory = "$Root/freezer$cgroup"
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        $strangerWork = Join-Path $TestDrive 'stranger-2'
        $stranger = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $strangerWork -WorkDirectory $strangerWork
        Add-ToCgroup $directory $target
        Add-ToCgroup $directory $stranger

        $failure = $null
        try { Checkpoint-Process -Id $target -ImagePath (Join-Path $work 'image') -FreezeCgroup $directory -ErrorAction Stop | Out-Null } catch { $failure = $_ }
        $failure.FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $failure.Exception.Message | Should -BeLike "*Process $stranger (selfcheck) is in the cgroup $directory*not in the tree of $target*"
        Get-Content "$directory/freezer.state" | Should -Be 'THAWED'
        Test-Path (Join-Path $work 'image') | Should -BeFalse
        Invoke-SelfCheck $target (Join-Path $work 'selfcheck.log') | Should -Match '^OK'
        Invoke-SelfCheck $stranger (Join-Path $strangerWork 'selfcheck.log') | Should -Match '^OK'
    }

    It 'is thawed by its guard when the checkpoint that froze it dies (SIGKILL) while it is frozen' -ForEach @(
        @{ Kind = 'v1'; Hierarchy = 'freezer'; State = 'freezer.state'; Thawed = 'THAWED' }
        @{ Kind = 'v2'; Hierarchy = 'unified'; State = 'cgroup.freeze'; Thawed = '0' }
    ) {
        $work = Join-Path $TestDrive "dying-$Kind"
        $cgroup = New-TestCgroup "dying-$Kind" $Hierarchy
        $directory = "$Root/$Hierarchy$cgroup"
        $loop = Start-ForkLoop $directory $work -Minimum 4
        $module = (Get-Module CriuPS).Path
        $command = Get-DyingCheckpointCommand $module "-Id $loop -ImagePath '$work/image' -FreezeCgroup '$directory'"
        $errors = Join-Path $TestDrive "dying-$Kind.err"
        $env:CRIUPS_DIE_AT = 'cgroup-frozen'
        try {
            $dying = Start-Process (Join-Path $PSHOME 'pwsh') -ArgumentList '-NoProfile', '-NonInteractive', '-Command', $command -PassThru `
                -RedirectStandardOutput '/dev/null' -RedirectStandardError $errors
        }
        finally { $env:CRIUPS_DIE_AT = $null }
        $dying.WaitForExit(120000) | Should -BeTrue
        Get-CheckpointDeath $dying $errors | Should -Be 'SIGKILL' -Because 'it died by SIGKILL at the death point, with the cgroup frozen'
        Wait-Until { (Get-Content "$directory/$State") -eq $Thawed } 'the guard to thaw the cgroup' 10
        $before = (Get-TreeIds $loop).Count
        Wait-Until { (Get-TreeIds $loop).Count -gt $before } 'the loop to fork again'
    }
}
