# PID namespaces. Restore-Process -NewPidNamespace restores an ordinary process tree into a PID namespace of its own,
# at its saved PIDs inside, under criups-init (PID 1), with a /proc of its own: the same image side by side many
# times. The target (Tests/Targets/pidcheck.c) checks itself: getpid() is the PID it noted at start, NSpid says so,
# its children keep their PIDs and stay its children, and it lists what /proc shows.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:PidCheck = Get-TestTarget 'pidcheck'

    # The last line the target logs after SIGUSR1, sent to the PID this session sees.
    function Invoke-PidCheck([int]$HostPid, [string]$Work) { Invoke-SelfCheck $HostPid (Join-Path $Work 'pidcheck.log') }

    # The PIDs of a process as /proc/PID/status's NSpid lists them, from this namespace inwards.
    function Get-NsPid([int]$HostPid) { (((Get-Content "/proc/$HostPid/status") -match '^NSpid:') -replace '^NSpid:\s*', '') -split '\s+' | ForEach-Object { [int]$_ } }

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
        foreach ($child in $children) { Test-ProcessAlive $child | Should -BeFalse -Because 'the namespace ends with its init' }
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
