# A fresh PowerShell per checkpoint (a script, a cron job, an Ansible task): its first checkpoint rehearses the dump on
# a process of its own before it freezes the target, so that the runtime compiles next to nothing while the target is
# frozen (dump.log says per phase what it compiled; without the rehearsal the frozen phases compiled some 300 methods
# for this target). Times are the bench's to measure (bench/Invoke-Benchmark.ps1 -Session Cold); this counts methods.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Module = (Get-Module CriuPS).Path
}

AfterAll { Stop-TestProcesses }

Describe 'The first checkpoint of a fresh PowerShell' {
    It 'rehearses on a process of its own before the freeze, so that its frozen phases compile next to nothing' {
        $work = Join-Path $TestDrive 'threads'
        $target = Start-TestTarget -Program (Get-TestTarget 'threads') -Arguments $work -WorkDirectory $work
        $image = Join-Path $TestDrive 'image'
        # What a session killed during its rehearsal leaves: the next rehearsal removes it.
        $gone = Start-Process true -PassThru; $gone.WaitForExit()
        $left = Join-Path ([IO.Path]::GetTempPath()) ".criups-rehearsal-$($gone.Id)"
        New-Item -ItemType Directory $left | Out-Null; Set-Content (Join-Path $left 'core-1.img') 'x'
        & (Join-Path $PSHOME 'pwsh') -NoProfile -NonInteractive -Command "Import-Module '$Module'; Checkpoint-Process -Id $target -ImagePath '$image' -LeaveRunning | Out-Null"
        $LASTEXITCODE | Should -Be 0
        $log = Get-Content (Join-Path $image 'dump.log')
        $log | Where-Object { $_ -match 'rehearsal: checkpointed a sleep of our own \((\d+)\) before the first freeze' } | Should -Not -BeNullOrEmpty
        Test-ProcessAlive ([int]$Matches[1]) | Should -BeFalse -Because 'the rehearsal''s process is gone with it (at most a zombie until init reaps it)'
        @(Get-ChildItem -Force ([IO.Path]::GetTempPath()) -Filter '.criups-rehearsal-*') | Should -BeNullOrEmpty -Because 'its image is removed, and the one a session that is gone left too'
        $log -match "rehearsal: removed $([regex]::Escape($left)), left by a session that is gone" | Should -Not -BeNullOrEmpty

        $frozenPhases = 'Freezing', 'Saving process state', 'Saving memory', 'Writing images', 'Resuming the processes'
        $compiled = 0
        foreach ($line in $log) {
            if ($line -match '\) (.+): done in [\d.]+ ms \(the runtime compiled (\d+) methods' -and $Matches[1] -in $frozenPhases) { $compiled += [int]$Matches[2] }
        }
        $compiled | Should -BeLessThan 100 -Because "what runs frozen was compiled before the freeze (dump.log: $($log -match 'done in' -join '; '))"
        Invoke-SelfCheck $target (Join-Path $work 'threads.log') | Should -Match "^OK threads=16 pid=$target$"
    }
}
