# Get-CheckpointImage: finding and reading image directories.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $work = Join-Path $TestDrive 'target'
    $script:Target = Start-TestTarget -Program (Get-TestTarget 'selfcheck') -Arguments 'sleep', $work -WorkDirectory $work
    $script:Images = Join-Path $TestDrive 'images'
    $script:First = Checkpoint-Process -Id $Target -ImagePath (Join-Path $Images 'first') -LeaveRunning
    $script:Second = Checkpoint-Process -Id $Target -ImagePath (Join-Path $Images 'second') -LeaveRunning
    New-Item -ItemType Directory (Join-Path $Images 'not-an-image') | Out-Null
}

AfterAll { Stop-TestProcesses }

Describe 'Get-CheckpointImage' {
    It 'reads every image a wildcard matches, passing over other directories' {
        $found = Get-CheckpointImage (Join-Path $Images '*')
        $found.Path | Should -Be @($First.Path, $Second.Path)
    }

    It 'reads the directories Get-ChildItem sends, and says which ones are not images' {
        $found = Get-ChildItem $Images -Directory | Get-CheckpointImage -ErrorVariable errors -ErrorAction SilentlyContinue
        $found.Path | Should -Be @($First.Path, $Second.Path)
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'ImageNotFound,CriuPS.Cmdlets.GetCheckpointImageCommand'
        $errors[0].TargetObject | Should -Match 'not-an-image'
    }

    It 'lists the images under the current location when given no path' {
        Push-Location $Images
        try { (Get-CheckpointImage).Path | Should -Be @($First.Path, $Second.Path) }
        finally { Pop-Location }
    }

    It 'reads each image as the checkpoint returned it' {
        Assert-ReadsAsReturned $First
        Assert-ReadsAsReturned $Second
    }

    It 'describes the saved process, its threads, memory areas and descriptors' {
        $image = Get-CheckpointImage -LiteralPath $First.Path
        $image.WrittenBy | Should -Match '^CriuPS \d+\.\d+\.\d+$'
        $image.CreatedAt | Should -BeGreaterThan ([DateTimeOffset]::Now.AddMinutes(-10))
        $process = $image.Processes[0]
        $process.Id | Should -Be $Target
        $process.Name | Should -Be 'selfcheck'
        $process.Threads.Id | Should -Be @($Target)
        ($process.MemoryAreas | Where-Object Kind -EQ 'heap').Count | Should -Be 1
        ($process.MemoryAreas | Where-Object Kind -EQ 'stack').Count | Should -Be 1
        ($process.MemoryAreas | Where-Object Path -Like '*/mapped.bin').Protection | Should -Be 'rw-p'
        ($process.MemoryAreas | Where-Object Path -Like '*/shared.bin').Kind | Should -Be 'shared-file'
        ($process.MemoryAreas | Measure-Object SavedBytes -Sum).Sum | Should -Be $image.MemoryBytes
        $log = $process.Files | Where-Object Fd -EQ 3
        $log.Type | Should -Be 'REG'
        $log.Target | Should -Be (Join-Path $TestDrive 'target/selfcheck.log')
        ($process.Files | Where-Object Fd -EQ 4).Position | Should -Be 4096
        ($process.Files | Where-Object Fd -EQ 7).CloseOnExec | Should -BeTrue
        ($process.Files | Where-Object Fd -EQ 8).Target | Should -Match '^pipe:\[\d+\]$'
    }
}
