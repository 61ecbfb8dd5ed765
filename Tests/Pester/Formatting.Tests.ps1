# CriuPS.Format.ps1xml and CriuPS.Types.ps1xml: a table by default and a list with details for every output type,
# MemoryMiB, default display property sets, and import objects that stay exactly crit's JSON.

BeforeDiscovery {
    $script:Types = @(
        'CriuPS.Engine.Model.CheckpointImage', 'CriuPS.Engine.Model.ImageProcess', 'CriuPS.Engine.Model.ImageThread',
        'CriuPS.Engine.Model.ImageMemoryArea', 'CriuPS.Engine.Model.ImageFileDescriptor', 'CriuPS.RestoredProcess',
        'CriuPS.Engine.Model.Views.ImageTreeNode', 'CriuPS.Engine.Model.Views.ImageOpenFile', 'CriuPS.Engine.Model.Views.ImageMapping',
        'CriuPS.Engine.Model.Views.ImageResidentPages', 'CriuPS.Engine.Support.SupportFeature', 'CriuPS.Engine.Resources.Cpu.CpuCompatibility', 'CriuPS.ImageFile',
        'CriuPS.Engine.Model.RemoteCheckpointImage', 'CriuPS.Engine.PageServer.LazyPageServer', 'CriuPS.Engine.Lazy.LazyRestore',
        'CriuPS.Engine.Model.ImageIntegrity', 'CriuPS.Engine.Model.ImageFileProblem'
    ) | ForEach-Object { @{ Type = $_ } }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Dyn = Join-Path (Get-SharedInterop) 'criu-4.2/counter-dyn/images'

    # The header line of a table as Format-Table draws it, words only.
    function Get-TableHeader($InputObject) {
        $lines = @(($InputObject | Format-Table | Out-String -Width 250) -split "`n" | ForEach-Object TrimEnd | Where-Object { $_ })
        $dashes = [array]::FindIndex($lines, [Predicate[string]] { param($line) $line -match '^[\s-]+$' })
        -split $lines[$dashes - 1]
    }
}

Describe 'Format data' {
    It 'has a table view, shown by default, and a list view for <Type>' -ForEach $Types {
        $views = @((Get-FormatData -TypeName $Type -PowerShellVersion $PSVersionTable.PSVersion).FormatViewDefinition)
        $views.Count | Should -BeGreaterOrEqual 2
        $views[0].Control | Should -BeOfType [System.Management.Automation.TableControl] -Because 'the first view is the default'
        @($views | Where-Object { $_.Control -is [System.Management.Automation.ListControl] }).Count | Should -Be 1
    }

    It 'shows an image as a compact table, and its details as a list' {
        $image = Get-CheckpointImage $Dyn
        Get-TableHeader $image | Should -Be @('Name', 'Root', 'Procs', 'MemoryMiB', 'Frozen', 'Created', 'Path')
        $list = $image | Format-List | Out-String
        $list | Should -Match 'WrittenBy\s+: CRIU'
        $list | Should -Match 'Processes\s+: counter-dyn \(\d+, running\)'
    }

    It 'shows the crit-style views as tables grouped by image directory' {
        $tree = Get-CheckpointImage $Dyn -View Tree
        Get-TableHeader $tree | Should -Be @('PID', 'PGID', 'SID', 'State', 'Threads', 'COMM')
        ($tree | Format-Table | Out-String) | Should -Match ([regex]::Escape("Image: $Dyn"))
        Get-TableHeader (Get-CheckpointImage $Dyn -View Files) | Should -Be @('PID', 'Fd', 'Type', 'Target')
        Get-TableHeader (Get-CheckpointImage $Dyn -View Memory) | Should -Be @('PID', 'Range', 'SizeKiB', 'Prot', 'Mapping')
        Get-TableHeader (Get-CheckpointImage $Dyn -View Pages) | Should -Be @('PID', 'Start', 'Pages', 'Resident', 'Parent', 'Runs', 'Mapping')
        (Get-CheckpointImage $Dyn -View Memory | Format-Table | Out-String -Width 250) | Should -Match '\b[0-9a-f]{12}-[0-9a-f]{12}\s+4 r--p /tmp/criups-interop/counter-dyn\b'
    }

    It 'shows the check of an image as a table, and its problems file by file as a list' {
        $result = Test-CheckpointImage $Dyn
        Get-TableHeader $result | Should -Be @('Intact', 'HasDigests', 'Problems', 'Files', 'MiB', 'Elapsed', 'Path')
        ($result | Format-List | Out-String) | Should -Match ('Unverified\s+: ' + [regex]::Escape($Dyn))
        Get-TableHeader ([CriuPS.Engine.Model.ImageFileProblem]::new('/img/core-1.img', 'missing')) | Should -Be @('File', 'Problem')
    }

    It 'shows features as a table of name and availability, and their requirement and impact as a list' {
        $feature = Test-CheckpointSupport -Name PidfdGetfd
        Get-TableHeader $feature | Should -Be @('Name', 'Available', 'Essential', 'Detail')
        ($feature | Format-List | Out-String) | Should -Match 'Requirement\s+: pidfd_open'
    }

    It 'shows whether an image fits this CPU as a table, and what was compared as a list' {
        $fit = Test-CheckpointSupport -ImagePath $Dyn
        Get-TableHeader $fit | Should -Be @('Fits', 'Missing', 'SavedCpu', 'ImagePath')
        ($fit | Format-List | Out-String) | Should -Match 'Detail\s+: No CPU description was saved'
    }

    It 'summarises imported image files without changing them' {
        $file = Import-CheckpointImageFile (Join-Path $Dyn 'pstree.img')
        Get-TableHeader $file | Should -Be @('Magic', 'Entries', 'First', 'entry')
        ($file | Format-Table | Out-String) | Should -Match 'PSTREE\s+1 \{"pid":\d+'
        ($file | ConvertTo-Json -Compress -Depth 32) | Should -Match '^\{"magic":"PSTREE","entries":\['
    }
}

Describe 'Type data' {
    It 'adds MemoryMiB to images and processes' {
        $image = Get-CheckpointImage $Dyn
        $image.MemoryMiB | Should -Be ([math]::Round($image.MemoryBytes / 1MB, 1))
        $image.Processes[0].MemoryMiB | Should -Be ([math]::Round($image.Processes[0].MemoryBytes / 1MB, 1))
    }

    It 'gives images, features and CPU comparisons a default display property set' {
        (Get-TypeData CriuPS.Engine.Model.CheckpointImage).DefaultDisplayPropertySet.ReferencedProperties | Should -Be @('Name', 'RootProcessId', 'ProcessCount', 'MemoryMiB', 'CreatedAt', 'Path')
        (Get-TypeData CriuPS.Engine.Support.SupportFeature).DefaultDisplayPropertySet.ReferencedProperties | Should -Be @('Name', 'Available', 'Essential', 'Detail')
        (Get-TypeData CriuPS.Engine.Resources.Cpu.CpuCompatibility).DefaultDisplayPropertySet.ReferencedProperties | Should -Be @('Fits', 'MissingFeatures', 'SavedCpu', 'ImagePath')
    }

    It 'adds no member to imported image files, whose properties are crit''s JSON' {
        Get-TypeData CriuPS.ImageFile | Should -BeNullOrEmpty
    }

    It 'is loaded by the manifest' {
        $manifest = Import-PowerShellDataFile (Join-Path (Get-Module CriuPS).ModuleBase 'CriuPS.psd1')
        $manifest.TypesToProcess | Should -Be @('CriuPS.Types.ps1xml')
        $manifest.FormatsToProcess | Should -Be @('CriuPS.Format.ps1xml')
    }
}
