# Lazy restore (post-copy) from the image directory: the process runs before its memory is back, its pages arrive on
# fault and in the background, it survives forking, moving, discarding and unmapping memory meanwhile, and it never
# runs on without its pages when the session serving them ends.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:LazyMem = Get-TestTarget 'lazymem'
    $script:Module = (Get-Module CriuPS).Path

    # Starts lazymem with MIB mebibytes and checkpoints it (the process ends); returns the pid, its log and the image.
    function New-LazyImage([string]$Name, [int]$MiB = 256) {
        $work = Join-Path $TestDrive $Name
        $log = Join-Path $work 'lazymem.log'
        $target = Start-TestTarget -Program $LazyMem -Arguments "$MiB", $log -WorkDirectory $work
        $image = Join-Path $TestDrive "$Name-image"
        Checkpoint-Process -Id $target -ImagePath $image | Out-Null
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        @{ Id = $target; Log = $log; Image = $image; Work = $work }
    }

    function Get-UffdDescriptors([int]$Id) {
        @(Get-ChildItem "/proc/$Id/fd" -ErrorAction Ignore | Where-Object { $_.LinkTarget -like '*userfaultfd*' })
    }

    # Areas registered with a userfaultfd for missing pages show "um" in their VmFlags.
    function Get-MissingRegistrations([int]$Id) { @(Select-String -Path "/proc/$Id/smaps" -Pattern '^VmFlags:.* um( |$)').Count }

    # This session's threads named after the lazy transfer.
    function Get-LazyThreads { @(Get-ChildItem "/proc/$PID/task" | Where-Object { (Get-Content "$($_.FullName)/comm" -ErrorAction Ignore) -eq 'criups-lazy' }) }
}

Describe 'Restore-Process -LazyPages from the image directory' {
    AfterEach { Stop-TestProcesses }

    It 'runs the process before its pages are in, then completes, unregisters and leaves no descriptor' {
        $t = New-LazyImage 'local'
        $restored = Restore-Process -ImagePath $t.Image -LazyPages
        Register-TestProcess $restored.Id
        $lazy = $restored.LazyRestore
        $lazy | Should -Not -BeNullOrEmpty
        $lazy.ProcessId | Should -Be $t.Id
        $lazy.Source | Should -Be "the image directory $($t.Image)"
        $lazy.PagesTotal | Should -BeGreaterThan (250MB / 4096)

        # It answers a signal that touches none of the big memory while most pages are still missing.
        Invoke-SelfCheck $t.Id $t.Log 'USR2' | Should -Match "^ALIVE 1 pid=$($t.Id)$"
        $lazy.PagesDone | Should -BeLessThan $lazy.PagesTotal -Because 'the process ran before every page had arrived'
        Get-MissingRegistrations $t.Id | Should -BeGreaterThan 0 -Because 'its memory is registered for missing pages meanwhile'
        Get-UffdDescriptors $t.Id | Should -BeNullOrEmpty -Because 'the userfaultfd lives in this session, not in the process'

        $done = $restored | Wait-LazyRestore -Timeout 120
        $done | Should -Be $lazy
        $lazy.State | Should -Be 'Completed'
        $lazy.Error | Should -BeNullOrEmpty
        $lazy.PagesDone | Should -Be $lazy.PagesTotal
        $lazy.PagesOnFault + $lazy.PagesInBackground | Should -Be $lazy.PagesTotal
        $lazy.Finished | Should -BeGreaterThan $lazy.Started

        Invoke-SelfCheck $t.Id $t.Log 'USR1' | Should -Be "OK pid=$($t.Id)"
        Get-MissingRegistrations $t.Id | Should -Be 0 -Because 'every area was unregistered'
        Get-UffdDescriptors $t.Id | Should -BeNullOrEmpty
        Wait-Until { (Get-LazyThreads).Count -eq 0 } 'the transfer thread to end'
        Join-Path $t.Image 'restore.log' | Should -FileContentMatch 'lazy restore Completed: \d+ pages on fault'
    }

    It 'follows a process that moves, discards and unmaps memory and forks while pages arrive' {
        $t = New-LazyImage 'churn'
        $restored = Restore-Process -ImagePath $t.Image -LazyPages
        Register-TestProcess $restored.Id
        # mremap of a quarter, MADV_DONTNEED of an eighth (it must read zeros), munmap of an eighth, then a child
        # that checks all it inherited: each while pages are still missing.
        Invoke-SelfCheck $t.Id $t.Log 'HUP' | Should -Be "CHURN OK pid=$($t.Id)"
        $lazy = $restored | Wait-LazyRestore -Timeout 120
        $lazy.State | Should -Be 'Completed'
        $lazy.PagesTotal | Should -BeGreaterThan (256MB / 4096) -Because "the forked child's missing pages were delivered too"
        Invoke-SelfCheck $t.Id $t.Log 'USR1' | Should -Be "OK pid=$($t.Id)"
        Join-Path $t.Image 'restore.log' | Should -FileContentMatch 'forked; the child'
    }

    It 'restores a small process lazily, whose few pages arrive at once' {
        $work = Join-Path $TestDrive 'nolazy'
        $log = Join-Path $work 'lazymem.log'
        $target = Start-TestTarget -Program $LazyMem -Arguments '1', $log -WorkDirectory $work
        $image = Join-Path $TestDrive 'nolazy-image'
        Checkpoint-Process -Id $target -ImagePath $image | Out-Null
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        $restored = Restore-Process -ImagePath $image -LazyPages
        Register-TestProcess $restored.Id
        ($restored | Wait-LazyRestore -Timeout 60).State | Should -Be 'Completed'
        Invoke-SelfCheck $target $log 'USR1' | Should -Be "OK pid=$target"
    }

    It 'refuses -PageServer without -LazyPages, and trust options without -PageServer' {
        { Restore-Process -ImagePath $TestDrive -PageServer '127.0.0.1:1' -ErrorAction Stop } |
            Should -Throw -ErrorId 'PageServerParameterInvalid,CriuPS.Cmdlets.RestoreProcessCommand'
        { Restore-Process -ImagePath $TestDrive -LazyPages -UseTls -ErrorAction Stop } |
            Should -Throw -ErrorId 'PageServerParameterInvalid,CriuPS.Cmdlets.RestoreProcessCommand'
        { Restore-Process -ImagePath $TestDrive -LazyPages -PageServer 'no-port' -ErrorAction Stop } |
            Should -Throw -ErrorId 'PageServerParameterInvalid,CriuPS.Cmdlets.RestoreProcessCommand'
    }
}

Describe 'A lazy restore whose process ends before every page is in' {
    AfterEach {
        Stop-TestProcesses
        $env:CRIUPS_FAIL_AT = $null
    }

    It 'ends ProcessExited with the pages that had arrived, not Completed, when the process is killed with pages certainly still missing' {
        $t = New-LazyImage 'killed-held' -MiB 64
        # Test hook: the transfer serves faults only, so the pages stay missing however fast the machine is.
        $env:CRIUPS_FAIL_AT = "lazy-pull-held:$($t.Id)"
        $restored = Restore-Process -ImagePath $t.Image -LazyPages
        $env:CRIUPS_FAIL_AT = $null
        Register-TestProcess $restored.Id
        Start-Sleep -Milliseconds 300
        $restored.LazyRestore.PagesDone | Should -BeLessThan ($restored.LazyRestore.PagesTotal / 2) -Because 'nothing streams in the background'
        & kill -s KILL $t.Id
        $lazy = $restored | Wait-LazyRestore -Timeout 60
        $lazy.State | Should -Be 'ProcessExited'
        $lazy.PagesOnFault + $lazy.PagesInBackground | Should -BeLessThan ($lazy.PagesTotal / 2)
        Join-Path $t.Image 'restore.log' | Should -FileContentMatch "process $($t.Id) (exited|ended) with \d+ pages still missing"
    }

    It 'ends ProcessExited, never Completed, when the process is killed while its pages stream in the background' -ForEach @(1..3 | ForEach-Object { @{ Run = $_ } }) {
        # The kernel frees a killed process's memory before its pidfd says it exited: the transfer, streaming without
        # a pause, meets the memory gone (ESRCH) first, and took that for the end of the last address space.
        $t = New-LazyImage "killed-streaming-$Run" -MiB 256
        $restored = Restore-Process -ImagePath $t.Image -LazyPages
        Register-TestProcess $restored.Id
        & kill -s KILL $t.Id
        $lazy = $restored | Wait-LazyRestore -Timeout 60
        $arrived = $lazy.PagesOnFault + $lazy.PagesInBackground
        $lazy.State | Should -BeIn 'ProcessExited', 'Completed'
        # Completed only when every page had arrived before the kill (a fast machine); otherwise ProcessExited.
        ($lazy.State -eq 'Completed') | Should -Be ($arrived -eq $lazy.PagesTotal) -Because "$arrived of $($lazy.PagesTotal) pages arrived and it ended $($lazy.State)"
        Write-Host "    run ${Run}: $($lazy.State), $arrived of $($lazy.PagesTotal) pages arrived"
    }
}

Describe 'A lazy restore whose session ends' {
    AfterEach { Stop-TestProcesses }

    It 'kills the process when PowerShell <How> before every page is in' -ForEach @(
        @{ How = 'exits'; Signal = $null }
        @{ How = 'is killed (SIGKILL)'; Signal = 'KILL' }
    ) {
        $t = New-LazyImage "ends-$($Signal ?? 'exit')" -MiB 512
        $status = Join-Path $t.Work 'status'
        $script = Join-Path $t.Work 'restore.ps1'
        # The child session restores lazily, says so, then exits at once or kills itself with SIGKILL at once: killed
        # from here, it could serve every page (half a GiB takes a second or two) before the signal came.
        Set-Content $script @'
param($Module, $Image, $Status, $End)
Import-Module $Module
$restored = Restore-Process -ImagePath $Image -LazyPages -Detach
$line = "$($restored.Id) $($restored.LazyRestore.PagesDone) $($restored.LazyRestore.PagesTotal)"
# At once: a cmdlet's first run in a fresh PowerShell can take longer than the rest of the pages do to come in.
if ($End -eq 'kill') { [IO.File]::WriteAllText($Status, $line); [System.Diagnostics.Process]::GetCurrentProcess().Kill() }
[IO.File]::WriteAllText($Status, $line)
'@
        $child = Start-Process "$PSHOME/pwsh" -ArgumentList '-NoProfile', '-NonInteractive', '-File', $script, $Module, $t.Image, $status, ($Signal ? 'kill' : 'exit') -PassThru `
            -RedirectStandardOutput (Join-Path $t.Work 'out.txt') -RedirectStandardError (Join-Path $t.Work 'err.txt')
        try {
            Wait-Until { (Test-Path $status) -and (Get-Content $status) } 'the child session to restore the process' -TimeoutSeconds 60
            $id, $done, $total = (Get-Content $status) -split ' '
            [int]$id | Should -Be $t.Id
            [long]$done | Should -BeLessThan ([long]$total)
            Wait-Until { -not (Test-ProcessAlive $t.Id) } 'the restored process to be killed' -TimeoutSeconds 30
            Wait-Until { $child.HasExited } 'the child session to end'
            @(Get-Content $t.Log -ErrorAction Ignore) | Where-Object { $_ -match 'CORRUPT' } | Should -BeNullOrEmpty
            if (-not $Signal) {
                Join-Path $t.Image 'restore.log' | Should -FileContentMatch 'session that served the lazy restore ended'
            }
        }
        finally {
            if (-not $child.HasExited) { $child.Kill() }
        }
    }
}
