# Images written by CRIU 4.2 (../shared/interop): read them, and restore the processes they hold.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Interop = Get-SharedInterop
    # The images name absolute paths: recreate them as the vectors' README says.
    $script:Place = '/tmp/criups-interop'
    New-Item -ItemType Directory -Force $Place | Out-Null

    # The vectors were taken on a CPU with AVX-512, whose state their threads hold (xsave components 5 to 7). On a CPU
    # without it a restore must refuse them, naming what is missing: that is checked, and the restore is skipped.
    function Skip-WhereCpuLacks([string]$Images) {
        $fit = Test-CheckpointSupport -ImagePath $Images
        if ($fit.Fits) { return $false }
        $failure = $null
        try { Restore-Process -ImagePath $Images -ErrorAction Stop | Out-Null } catch { $failure = $_ }
        $failure.FullyQualifiedErrorId | Should -Be 'ImageIncompatible,CriuPS.Cmdlets.RestoreProcessCommand'
        $failure.Exception.Message | Should -BeLike "*lacks: $($fit.MissingFeatures[0])*"
        Set-ItResult -Skipped -Because "this CPU ($($fit.ThisCpu)) lacks $($fit.MissingFeatures -join '; '): the restore was refused, as it must be"
        $true
    }
}

AfterAll {
    Remove-Item -Recurse -Force $Place -ErrorAction Ignore
}

Describe 'The CRIU 4.2 vector of <Program>' -ForEach @(
    @{ Program = 'counter-static'; Log = 'static.log' }
    @{ Program = 'counter-dyn'; Log = 'dyn.log' }
) {
    BeforeAll {
        $vector = Join-Path $Interop "criu-4.2/$Program"
        $script:Pid0 = [int](Get-Content (Join-Path $vector 'pid.txt'))
        $script:Images = Join-Path $TestDrive "$Program-images"
        Copy-Item (Join-Path $vector 'images') $Images -Recurse
        Copy-Item (Join-Path $Interop "bin/$Program") (Join-Path $Place $Program)
        $script:LogPath = Join-Path $Place $Log
        Copy-Item (Join-Path $vector 'log-at-dump.txt') $LogPath
    }
    AfterAll { Stop-TestProcesses }

    It 'is read by Get-CheckpointImage' {
        $image = Get-CheckpointImage -LiteralPath $Images
        $image.WrittenBy | Should -Be 'CRIU'
        $image.RootProcessId | Should -Be $Pid0
        $image.Name | Should -Be $Program
        $image.ProcessCount | Should -Be 1
        $image.ThreadCount | Should -Be 1
        $image.MemoryBytes | Should -Be (Get-Item (Join-Path $Images 'pages-1.img')).Length
        $process = $image.Processes[0]
        $process.SessionId | Should -Be $Pid0
        ($process.Files | Where-Object Fd -EQ 3).Target | Should -Be $LogPath
        ($process.Files | Where-Object Fd -EQ 4).Type | Should -Be 'PIPE'
        ($process.MemoryAreas | Where-Object Kind -EQ 'vdso').Count | Should -Be 1
        ($process.MemoryAreas | Where-Object Kind -EQ 'file' | Select-Object -First 1).Path | Should -Be (Join-Path $Place $Program)
        $process.Threads[0].InstructionPointer | Should -BeGreaterThan 0
    }

    It 'is restored by Restore-Process: same PID, and the process finds its state intact' {
        if (Skip-WhereCpuLacks $Images) { return }
        $restored = Restore-Process -ImagePath $Images
        Register-TestProcess $Pid0
        $restored.Id | Should -Be $Pid0
        $restored.Name | Should -Be $Program
        $line = Invoke-SelfCheck $Pid0 $LogPath
        $line | Should -Match "^OK counter=(\d+) pid=$Pid0$"
        $counter = [int]($line -replace '.*counter=(\d+).*', '$1')
        $counter | Should -BeGreaterOrEqual 6
        # It keeps running: 2 s later its 100 ms ticks have moved the counter on, and its state is still intact.
        Start-Sleep -Seconds 2
        $later = Invoke-SelfCheck $Pid0 $LogPath
        $later | Should -Match "^OK counter=(\d+) pid=$Pid0$"
        [int]($later -replace '.*counter=(\d+).*', '$1') | Should -BeGreaterOrEqual ($counter + 10)
        Invoke-SelfCheck $Pid0 $LogPath 'TERM' | Should -Match "^OK counter=\d+ pid=$Pid0$"
        Wait-Until { -not (Test-ProcessAlive $Pid0) } 'the restored counter to exit'
        Wait-Until { $null -ne $restored.ExitStatus } 'the session''s reaper to record its exit status'
        $restored.ExitStatus | Should -Be 0
    }
}

Describe 'The CRIU 4.2 vector of family-dyn: threads and a child' {
    BeforeAll {
        $vector = Join-Path $Interop 'criu-4.2/family-dyn'
        $script:Parent = [int](Get-Content (Join-Path $vector 'pid.txt'))
        $script:Images = Join-Path $TestDrive 'family-dyn-images'
        Copy-Item (Join-Path $vector 'images') $Images -Recurse
        Copy-Item (Join-Path $Interop 'bin/family-dyn') (Join-Path $Place 'family-dyn')
        $script:LogPath = Join-Path $Place 'family.log'
        Copy-Item (Join-Path $vector 'log-at-dump.txt') $LogPath
        [IO.File]::SetUnixFileMode($LogPath, [IO.UnixFileMode]'UserRead, UserWrite, GroupRead, OtherRead')
        $script:Child = [int]((Get-Content (Join-Path $vector 'log-at-dump.txt') | Select-Object -First 1) -replace '.*child=(\d+).*', '$1')
    }
    AfterAll { Stop-TestProcesses }

    It 'is read by Get-CheckpointImage: a parent with 4 threads and a child' {
        $image = Get-CheckpointImage -LiteralPath $Images
        $image.WrittenBy | Should -Be 'CRIU'
        $image.RootProcessId | Should -Be $Parent
        $image.ProcessCount | Should -Be 2
        $image.ThreadCount | Should -Be 6
        ($image.Processes | Where-Object Id -EQ $Child).ParentId | Should -Be $Parent
    }

    It 'is restored by Restore-Process with the same PIDs, and the family finds its state intact, then and 2 s later' {
        if (Skip-WhereCpuLacks $Images) { return }
        $restored = Restore-Process -ImagePath $Images
        Register-TestProcess $Parent
        $restored.Id | Should -Be $Parent
        @(Get-ChildItem "/proc/$Parent/task").Count | Should -Be 5
        (Get-Content "/proc/$Child/stat" -Raw).Split(') ')[1].Split(' ')[1] | Should -Be $Parent
        Invoke-SelfCheck $Parent $LogPath | Should -Be "OK family threads=4 child=$Child pid=$Parent"
        Start-Sleep -Seconds 2
        Invoke-SelfCheck $Parent $LogPath | Should -Be "OK family threads=4 child=$Child pid=$Parent"
        Send-Signal $Parent 'TERM'
        Wait-Until { -not (Test-ProcessAlive $Parent) -and -not (Test-ProcessAlive $Child) } 'the family to exit'
        Wait-Until { $null -ne $restored.ExitStatus } 'the session''s reaper to record its exit status'
        $restored.ExitStatus | Should -Be 0
    }
}
