# Argument completers: PIDs and process names of running processes, image directories, image files and feature
# names, as TabExpansion2 offers them.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $work = Join-Path $TestDrive 'target'
    $script:Target = Start-TestTarget -Program (Get-TestTarget 'selfcheck') -Arguments 'sleep', $work -WorkDirectory $work

    # A folder with two images, an ordinary folder, a folder whose name needs quotes, and a file.
    $script:Images = Join-Path $TestDrive 'images'
    $script:First = Checkpoint-Process -Id $Target -ImagePath (Join-Path $Images 'alpha') -LeaveRunning -ErrorAction Stop
    Copy-Item $First.Path (Join-Path $Images 'beta image') -Recurse
    New-Item -ItemType Directory (Join-Path $Images 'plain') | Out-Null
    Set-Content (Join-Path $Images 'notes.txt') 'not an image'

    # What TabExpansion2 offers at the end of INPUT.
    function Get-Completion([string]$InputScript) {
        (TabExpansion2 -inputScript $InputScript -cursorColumn $InputScript.Length).CompletionMatches
    }
}

AfterAll { Stop-TestProcesses }

Describe 'Argument completion' {
    It 'completes -Id with running PIDs, listed with their names' {
        $prefix = "$Target".Substring(0, "$Target".Length - 1)
        $matches = Get-Completion "Checkpoint-Process -Id $prefix"
        $ours = $matches | Where-Object CompletionText -EQ "$Target"
        $ours | Should -Not -BeNullOrEmpty
        $ours.ListItemText | Should -Be "$Target selfcheck"
        $ours.ToolTip | Should -Match "^selfcheck \($Target\): .*selfcheck sleep"
        $matches | ForEach-Object { $_.CompletionText | Should -BeLike "$prefix*" }
        $matches.CompletionText | Should -Not -Contain "$PID" -Because 'a session cannot checkpoint itself'
    }

    It 'completes -Id from a process name' {
        (Get-Completion 'Checkpoint-Process -Id selfch').CompletionText | Should -Contain "$Target"
    }

    It 'completes -Name with the names of running processes' {
        $matches = Get-Completion 'Checkpoint-Process -Name selfch'
        $matches.CompletionText | Should -Contain 'selfcheck'
        ($matches | Where-Object CompletionText -EQ 'selfcheck').ToolTip | Should -Match "\b$Target\b"
    }

    It 'completes image paths of <Command> with image directories first, then other directories, never files' -ForEach @(
        @{ Command = 'Restore-Process -ImagePath' }
        @{ Command = 'Get-CheckpointImage -Path' }
        @{ Command = 'Get-CheckpointImage -LiteralPath' }
        @{ Command = 'Checkpoint-Process -Id 1 -ImagePath' }
    ) {
        $matches = Get-Completion "$Command $Images/"
        $matches.ListItemText | Should -Be @('alpha', 'beta image', 'plain/')
        $matches[0].CompletionText | Should -Be "$Images/alpha"
        $matches[1].CompletionText | Should -Be "'$Images/beta image'"
        $matches[0].ToolTip | Should -Match "^Checkpoint image of selfcheck \($Target\)"
    }

    It 'completes a path relative to the current location' {
        Push-Location $Images
        try { (Get-Completion 'Restore-Process -ImagePath al').CompletionText | Should -Be @('alpha') }
        finally { Pop-Location }
    }

    It 'completes Import-CheckpointImageFile paths with image files' {
        $matches = Get-Completion "Import-CheckpointImageFile -Path $($First.Path)/co"
        $matches.ListItemText | Should -Be @("core-$Target.img")
        $matches[0].ToolTip | Should -Match '^CORE image'
        (Get-Completion "Import-CheckpointImageFile -Path $($First.Path)/dump").CompletionText | Should -BeNullOrEmpty -Because 'dump.log is no image'
    }

    It 'completes -Name of Test-CheckpointSupport and -View of Get-CheckpointImage' {
        (Get-Completion 'Test-CheckpointSupport -Name Cuda').CompletionText | Should -Be @('CudaCheckpoint')
        (Get-Completion 'Get-CheckpointImage -View M').CompletionText | Should -Be @('Memory')
    }

    It 'registers a completer on every parameter that takes PIDs, process names or image paths' {
        $expected = @{
            'Checkpoint-Process'         = 'Id', 'Name', 'ImagePath'
            'Restore-Process'            = @('ImagePath')
            'Get-CheckpointImage'        = 'Path', 'LiteralPath'
            'Import-CheckpointImageFile' = 'Path', 'LiteralPath'
            'Test-CheckpointSupport'     = @('Name')
        }
        foreach ($command in $expected.Keys) {
            foreach ($parameter in $expected[$command]) {
                (Get-Command $command).Parameters[$parameter].Attributes |
                    Where-Object { $_ -is [System.Management.Automation.ArgumentCompleterAttribute] } |
                    Should -Not -BeNullOrEmpty -Because "$command -$parameter"
            }
        }
    }
}
