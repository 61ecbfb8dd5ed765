# End to end: time namespaces (Resources/Process/TimeNamespaces.cs). Tests/Targets/timens.c lives in a time namespace
# with offsets of its own and has a child in another, nested one, made for its children only; restored, both are in
# new namespaces whose clocks go on from where they were at the dump (CRIU's rule: no jump backwards, the time spent
# saved does not count), 4000000 s apart as before, the vDSO agreeing with the system call, and children forked
# after the restore born in the right one. unshare --time (what was refused before) comes back too.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Unshare = (Get-Command unshare -CommandType Application | Select-Object -First 1).Source

    function Get-Namespace([int]$Id, [string]$Link) { (Get-Item "/proc/$Id/ns/$Link").LinkTarget }

    # No child yet: the file is empty, which Get-Content -Raw reads as null.
    function Get-Children([int]$Id) { @("$(Get-Content "/proc/$Id/task/$Id/children" -Raw)".Trim() -split ' ' | Where-Object { $_ } | ForEach-Object { [int]$_ }) }
}

Describe 'Time namespaces' {
    AfterEach { Stop-TestProcesses }

    It 'restores nested time namespaces: the clocks go on from the dump in each, 4000000 s apart, read through the vDSO too' {
        $work = Join-Path $TestDrive 'nested'
        $log = Join-Path $work 'timens.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'timens') -Arguments $work -WorkDirectory $work
        $child = (Get-Children $target)[0]
        $engines = Get-Namespace $PID 'time'
        Get-Namespace $target 'time' | Should -Not -Be $engines
        Get-Namespace $target 'time_for_children' | Should -Be (Get-Namespace $child 'time') -Because 'the child was born in the namespace its parent made for its children'
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'the target checks itself before the dump too'

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'nested-image')
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        @(Get-ChildItem $image.Path -Filter 'timens-*.img').Count | Should -Be 2
        Start-Sleep -Seconds 3 # time spent saved, which the restored clocks must not count

        $restored = Restore-Process $image.Path
        Register-TestProcess $restored.Id
        $child = (Get-Children $target)[0]
        Get-Namespace $target 'time' | Should -Not -Be $engines
        Get-Namespace $child 'time' | Should -Not -Be (Get-Namespace $target 'time')
        Get-Namespace $target 'time_for_children' | Should -Be (Get-Namespace $child 'time')
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'no clock went backwards or jumped, the namespaces are 4000000 s apart, the vDSO agrees, a new child is born in the nested one'
    }

    It 'restores a process started by unshare --time --monotonic --boottime, its clock going on from the dump' {
        $work = Join-Path $TestDrive 'unshare'
        New-Item -ItemType Directory -Force $work | Out-Null
        # unshare, checkpointed with its child: a shell in the time namespace it made for its children, 1000000 s ahead,
        # writes CLOCK_BOOTTIME (as /proc/uptime shows it) once a second.
        $loop = "while :; do cut -d' ' -f1 /proc/uptime > '$work/uptime.tmp'; mv '$work/uptime.tmp' '$work/uptime'; sleep 1; done"
        $target = Start-TestTarget -Program /bin/sh -WorkDirectory $work -Arguments @('-c',
            "echo `$`$ > '$work/ready'; exec '$Unshare' --time --fork --monotonic 1000000 --boottime 1000000 /bin/sh -c `"$loop`"")
        Wait-Until { @(Get-Children $target).Count -eq 1 } 'unshare to start its child'
        $child = (Get-Children $target)[0]
        Register-TestProcess $child
        Get-Namespace $target 'time_for_children' | Should -Be (Get-Namespace $child 'time')
        Wait-Until { Test-Path (Join-Path $work 'uptime') } 'the first reading'
        $before = [double](Get-Content (Join-Path $work 'uptime') -Raw)
        $before | Should -BeGreaterThan 1000000 -Because 'the namespace is 1000000 s ahead'

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'unshare-image')
        Wait-Until { -not (Test-ProcessAlive $child) } 'the checkpointed tree to end'
        $restored = Restore-Process $image.Path
        Register-TestProcess $restored.Id
        Get-Namespace $target 'time_for_children' | Should -Be (Get-Namespace (Get-Children $target)[0] 'time') -Because 'the child is in the namespace unshare made for its children again'
        Remove-Item (Join-Path $work 'uptime')
        Wait-Until { Test-Path (Join-Path $work 'uptime') } 'a reading after the restore'
        $after = [double](Get-Content (Join-Path $work 'uptime') -Raw)
        $after | Should -BeGreaterOrEqual $before -Because 'the clock did not go backwards'
        $after - $before | Should -BeLessThan 60 -Because 'it went on from where it was'
    }
}
