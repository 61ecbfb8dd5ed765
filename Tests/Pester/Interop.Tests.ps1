# Images written by CRIU 4.2 (../shared/interop): read them, and restore the processes they hold.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Interop = Get-SharedInterop
    # The images name absolute paths: recreate them as the vectors' README says.
    $script:Place = '/tmp/criups-interop'
    New-Item -ItemType Directory -Force $Place | Out-Null
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
        $restored = Restore-Process -ImagePath $Images
        Register-TestProcess $Pid0
        $restored.Id | Should -Be $Pid0
        $restored.Name | Should -Be $Program
        $line = Invoke-SelfCheck $Pid0 $LogPath
        $line | Should -Match "^OK counter=(\d+) pid=$Pid0$"
        [int]($line -replace '.*counter=(\d+).*', '$1') | Should -BeGreaterOrEqual 6
        Invoke-SelfCheck $Pid0 $LogPath 'TERM' | Should -Match "^OK counter=\d+ pid=$Pid0$"
        Wait-Until { -not (Test-ProcessAlive $Pid0) } 'the restored counter to exit'
        Wait-Until { $null -ne $restored.ExitStatus } 'the session''s reaper to record its exit status'
        $restored.ExitStatus | Should -Be 0
    }
}
