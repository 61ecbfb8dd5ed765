# What scripts rely on: errors that honour -ErrorAction and set $?, pipelines that go on past a failing input, and
# output objects that survive ConvertTo-Json and Export-Clixml/Import-Clixml.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Static = Join-Path (Get-SharedInterop) 'criu-4.2/counter-static/images'
    $script:Dyn = Join-Path (Get-SharedInterop) 'criu-4.2/counter-dyn/images'
    $script:Missing = Join-Path $TestDrive 'no-such-image'
    # A PID that is free: above pid_max nothing can run.
    $script:FreePid = [int](Get-Content /proc/sys/kernel/pid_max -Raw) + 1
}

AfterAll { Stop-TestProcesses }

Describe 'Errors' {
    It '-ErrorAction Stop makes <Command> a terminating error that try/catch catches' -ForEach @(
        @{ Command = 'Get-CheckpointImage'; Call = { Get-CheckpointImage -LiteralPath $Missing -ErrorAction Stop }; Id = 'ImageNotFound' }
        @{ Command = 'Restore-Process'; Call = { Restore-Process -ImagePath $Missing -ErrorAction Stop }; Id = 'ImageNotFound' }
        @{ Command = 'Checkpoint-Process'; Call = { Checkpoint-Process -Id $FreePid -ImagePath (Join-Path $TestDrive 'x') -ErrorAction Stop }; Id = 'ProcessNotFound' }
        @{ Command = 'Import-CheckpointImageFile'; Call = { Import-CheckpointImageFile -LiteralPath $Missing -ErrorAction Stop }; Id = 'ImageNotFound' }
        @{ Command = 'Export-CheckpointImageFile'; Call = { @{ magic = 'NOPE' } | Export-CheckpointImageFile (Join-Path $TestDrive 'nope.img') -ErrorAction Stop }; Id = 'InvalidImageData' }
        @{ Command = 'Test-CheckpointSupport'; Call = { Test-CheckpointSupport -Name NoSuchFeature -ErrorAction Stop }; Id = 'FeatureNotFound' }
    ) {
        $caught = $null
        try { & $Call; throw 'no error' } catch { $caught = $_ }
        $caught.FullyQualifiedErrorId | Should -BeLike "$Id,CriuPS.Cmdlets.*"
        $caught.CategoryInfo.Category | Should -Not -Be 'NotSpecified'
        $caught.TargetObject | Should -Not -BeNullOrEmpty
    }

    It '-ErrorAction SilentlyContinue hides the error but records it, Ignore does not even record it' {
        $Error.Clear()
        Get-CheckpointImage -LiteralPath $Missing -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $Error.Count | Should -Be 1
        $Error.Clear()
        Get-CheckpointImage -LiteralPath $Missing -ErrorAction Ignore
        $Error.Count | Should -Be 0
    }

    It 'leaves $? false after a failed call and true after a good one' {
        Get-CheckpointImage -LiteralPath $Missing -ErrorAction SilentlyContinue
        $ok = $?
        $ok | Should -BeFalse
        Get-CheckpointImage -LiteralPath $Static | Out-Null
        $ok = $?
        $ok | Should -BeTrue
        Test-CheckpointSupport -Name NoSuchFeature -ErrorAction SilentlyContinue
        $ok = $?
        $ok | Should -BeFalse
    }

    It 'gives a recommended action where the user can do something' {
        Get-CheckpointImage -LiteralPath (Join-Path $Static 'pstree.img') -ErrorVariable errors -ErrorAction SilentlyContinue
        Import-CheckpointImageFile -LiteralPath (Join-Path $Static 'dump.log') -ErrorVariable +errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 2
        $errors[1].ErrorDetails.RecommendedAction | Should -Not -BeNullOrEmpty
    }
}

Describe 'Pipelines of several inputs' {
    AfterEach { Stop-TestProcesses }

    It 'Get-CheckpointImage goes on past a path that is no image' {
        $found = $Static, $Missing, $Dyn | Get-CheckpointImage -ErrorVariable errors -ErrorAction SilentlyContinue
        $found.Path | Should -Be @($Static, $Dyn)
        $errors.Count | Should -Be 1
    }

    It 'Checkpoint-Process goes on past a process that does not exist' {
        $work = Join-Path $TestDrive 'several'
        $target = Start-TestTarget -Program (Get-TestTarget 'selfcheck') -Arguments 'sleep', $work -WorkDirectory $work
        Push-Location $TestDrive
        try { $images = Checkpoint-Process -Id $FreePid, $target -LeaveRunning -ErrorVariable errors -ErrorAction SilentlyContinue }
        finally { Pop-Location }
        @($images).Count | Should -Be 1
        $images.RootProcessId | Should -Be $target
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'ProcessNotFound,CriuPS.Cmdlets.CheckpointProcessCommand'
        $errors[0].TargetObject | Should -Be $FreePid
    }

    It 'Restore-Process goes on past an image that does not exist' {
        $work = Join-Path $TestDrive 'restore-several'
        $target = Start-TestTarget -Program (Get-TestTarget 'selfcheck') -Arguments 'sleep', $work -WorkDirectory $work
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'restore-several-image') -ErrorAction Stop
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        $restored = $Missing, $image.Path | Restore-Process -ErrorVariable errors -ErrorAction SilentlyContinue
        $restored | ForEach-Object { Register-TestProcess $_.Id }
        @($restored).Count | Should -Be 1
        $restored.Id | Should -Be $target
        $errors.Count | Should -Be 1
    }

    It 'Import-CheckpointImageFile goes on past a file that is no image' {
        $found = (Join-Path $Dyn 'pstree.img'), (Join-Path $Dyn 'dump.log'), (Join-Path $Dyn 'inventory.img') |
            Import-CheckpointImageFile -ErrorVariable errors -ErrorAction SilentlyContinue
        $found.magic | Should -Be @('PSTREE', 'INVENTORY')
        $errors.Count | Should -Be 1
    }

    It 'stops cleanly when a later command wants no more (Select-Object -First)' {
        $first = Get-CheckpointImage $Dyn -View Memory -ErrorVariable errors | Select-Object -First 1
        $first.Start | Should -BeGreaterThan 0
        $errors | Should -BeNullOrEmpty
    }
}

Describe 'Output objects' {
    BeforeAll {
        $script:Objects = [ordered]@{
            CheckpointImage = Get-CheckpointImage $Dyn
            TreeNode        = Get-CheckpointImage $Dyn -View Tree
            OpenFile        = @(Get-CheckpointImage $Dyn -View Files)[3]
            Mapping         = @(Get-CheckpointImage $Dyn -View Memory)[1]
            ResidentPages   = @(Get-CheckpointImage $Dyn -View Pages)[1]
            SupportFeature  = Test-CheckpointSupport -Name PidfdGetfd
            ImageFile       = Import-CheckpointImageFile (Join-Path $Dyn 'pstree.img')
        }
        # The properties a script would use of each.
        $script:Main = @{
            CheckpointImage = 'Path', 'RootProcessId', 'Name', 'MemoryBytes', 'WrittenBy'
            TreeNode        = 'ImagePath', 'Id', 'Name', 'State', 'Depth'
            OpenFile        = 'ProcessId', 'Fd', 'Type', 'Target'
            Mapping         = 'ProcessId', 'Start', 'End', 'Protection', 'Mapping'
            ResidentPages   = 'ProcessId', 'Start', 'Pages', 'ResidentPages'
            SupportFeature  = 'Name', 'Available', 'Essential', 'Requirement', 'Impact', 'Detail'
            ImageFile       = 'magic', 'entries'
        }
    }

    It 'keep their main properties through ConvertTo-Json and ConvertFrom-Json' {
        foreach ($name in $Objects.Keys) {
            $copy = $Objects[$name] | ConvertTo-Json -Depth 8 -WarningAction Ignore | ConvertFrom-Json -DateKind String
            foreach ($property in $Main[$name]) {
                "$($copy.$property | ConvertTo-Json -Depth 8 -Compress)" | Should -Be "$($Objects[$name].$property | ConvertTo-Json -Depth 8 -Compress)" -Because "$name.$property"
            }
        }
    }

    It 'keep their main properties through Export-Clixml and Import-Clixml' {
        foreach ($name in $Objects.Keys) {
            $file = Join-Path $TestDrive "$name.xml"
            $Objects[$name] | Export-Clixml $file -Depth 4
            $copy = Import-Clixml $file
            foreach ($property in $Main[$name] | Where-Object { $_ -ne 'entries' }) {
                "$($copy.$property)" | Should -Be "$($Objects[$name].$property)" -Because "$name.$property"
            }
        }
        (Import-Clixml (Join-Path $TestDrive 'ImageFile.xml')).entries[0].pid | Should -Be $Objects.ImageFile.entries[0].pid
        (Import-Clixml (Join-Path $TestDrive 'CheckpointImage.xml')).Processes[0].Name | Should -Be 'counter-dyn'
    }

    It 'restored processes survive ConvertTo-Json and Export-Clixml too' {
        $work = Join-Path $TestDrive 'restored'
        $target = Start-TestTarget -Program (Get-TestTarget 'selfcheck') -Arguments 'sleep', $work -WorkDirectory $work
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'restored-image') -ErrorAction Stop
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        $restored = Restore-Process -ImagePath $image.Path -ErrorAction Stop
        Register-TestProcess $restored.Id
        $json = $restored | ConvertTo-Json -Depth 1 -WarningAction Ignore | ConvertFrom-Json -DateKind String
        $json.Id | Should -Be $target
        $json.ImagePath | Should -Be $image.Path
        $json.RestoreTime.Ticks | Should -Be $restored.RestoreTime.Ticks
        $file = Join-Path $TestDrive 'restored.xml'
        $restored | Export-Clixml $file -Depth 1
        $copy = Import-Clixml $file
        $copy.Id | Should -Be $target
        $copy.ImagePath | Should -Be $image.Path
        $copy.MemoryBytes | Should -Be $restored.MemoryBytes
        Stop-TestProcesses
    }
}
