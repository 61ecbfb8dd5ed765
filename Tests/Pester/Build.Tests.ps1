# Build hygiene: a complete manifest, the checks build.ps1 runs on the repository's PowerShell files, and a package
# that Install-PSResource installs from a local repository.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Root = Get-RepositoryRoot
    $script:Built = Join-Path $Root 'out/CriuPS'
    $script:Checker = Join-Path $Root 'build/Test-PowerShellFiles.ps1'
}

Describe 'The manifest' {
    BeforeAll {
        $script:Manifest = Test-ModuleManifest (Join-Path $Built 'CriuPS.psd1')
        $script:Data = Import-PowerShellDataFile (Join-Path $Root 'CriuPS.psd1')
    }

    It 'names the module, its version (that of the assemblies), GUID, author and description' {
        $Manifest.Name | Should -Be 'CriuPS'
        $Manifest.Version | Should -Be ([version]([Reflection.AssemblyName]::GetAssemblyName((Join-Path $Built 'CriuPS.dll')).Version.ToString(3)))
        $Manifest.Guid | Should -Be '2fd25e39-d275-48e9-8f0e-9f6ba1e20865'
        $Manifest.Author | Should -Not -BeNullOrEmpty
        $Manifest.Description | Should -Match 'checkpoint'
    }

    It 'requires the PowerShell whose .NET the assemblies are built for, Core' {
        # A PowerShell on an older .NET imports a module it cannot load; its manifest must refuse it first. PowerShell
        # 7.4 runs on .NET 8, 7.5 on .NET 9, 7.6 on .NET 10.
        $target = [Reflection.Assembly]::LoadFrom((Join-Path $Built 'CriuPS.dll')).GetCustomAttributesData() |
            Where-Object { $_.AttributeType.Name -eq 'TargetFrameworkAttribute' } | ForEach-Object { $_.ConstructorArguments[0].Value }
        $target -match '^\.NETCoreApp,Version=v(\d+)\.0$' | Should -BeTrue -Because "the assembly says $target"
        $firstPowerShell = @{ 8 = '7.4'; 9 = '7.5'; 10 = '7.6' }[[int]$Matches[1]]
        $Manifest.PowerShellVersion | Should -Be ([version]$firstPowerShell)
        $Manifest.CompatiblePSEditions | Should -Be @('Core')
    }

    It 'exports exactly the cmdlets the assembly has, listed explicitly, and nothing else' {
        $Data.CmdletsToExport | Should -Not -Contain '*'
        $declared = [Reflection.Assembly]::LoadFrom((Join-Path $Built 'CriuPS.dll')).GetTypes() |
            ForEach-Object { $_.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false) } |
            ForEach-Object { "$($_.VerbName)-$($_.NounName)" }
        @($Data.CmdletsToExport | Sort-Object) | Should -Be @($declared | Sort-Object)
        @($Manifest.ExportedCmdlets.Keys | Sort-Object) | Should -Be @($declared | Sort-Object)
        $Data.FunctionsToExport, $Data.VariablesToExport, $Data.AliasesToExport | ForEach-Object { @($_).Count | Should -Be 0 }
    }

    It 'loads the format and type files, which the build ships' {
        $Data.FormatsToProcess | Should -Be @('CriuPS.Format.ps1xml')
        $Data.TypesToProcess | Should -Be @('CriuPS.Types.ps1xml')
        foreach ($file in $Data.FormatsToProcess + $Data.TypesToProcess) { Test-Path (Join-Path $Built $file) | Should -BeTrue }
    }

    It 'has the gallery''s tags and links' {
        $Manifest.Tags | Should -Contain 'CRIU'
        $Manifest.Tags | Should -Contain 'Linux'
        $Manifest.ProjectUri | Should -Not -BeNullOrEmpty
        $Manifest.LicenseUri | Should -Not -BeNullOrEmpty
    }
}

Describe 'build/Test-PowerShellFiles.ps1' {
    It 'finds no problem in the repository' {
        $problems = @(& $Checker -Path $Root)
        $problems | ForEach-Object { "$($_.File):$($_.Line): $($_.Rule): $($_.Message)" } | Should -BeNullOrEmpty
    }

    It 'reports each of its rules, with file and line' {
        $folder = Join-Path $TestDrive 'lint'
        New-Item -ItemType Directory (Join-Path $folder 'Tests') -Force | Out-Null
        Set-Content (Join-Path $folder 'script.ps1') "Get-Item .`ngci . | % { `$_ }`nif (`$x -eq `$null) { }"
        Set-Content (Join-Path $folder 'Tests/helpers.psm1') "function Show { Write-Host 'hi' }"
        Set-Content (Join-Path $folder 'broken.ps1') 'function f( {'
        Set-Content (Join-Path $folder 'views.ps1xml') '<Configuration><View></Configuration>'
        New-Item -ItemType Directory (Join-Path $folder 'out') | Out-Null
        Set-Content (Join-Path $folder 'out/ignored.ps1') 'gci'

        $problems = @(& $Checker -Path $folder)
        $problems | ForEach-Object { "$($_.File):$($_.Line):$($_.Rule)" } | Sort-Object | Should -Be @(
            'broken.ps1:1:ParseError'
            'script.ps1:2:Alias'
            'script.ps1:2:Alias'
            'script.ps1:3:NullOnRight'
            'Tests/helpers.psm1:1:WriteHostInModule'
            'views.ps1xml:1:ParseError')
        ($problems | Where-Object Rule -EQ 'Alias').Message | Should -Be @("'gci' is an alias; write Get-ChildItem", "'%' is an alias; write ForEach-Object")
    }

    It 'fails build.ps1 on a problem' {
        $text = Get-Content -Raw (Join-Path $Root 'build.ps1')
        $text | Should -Match 'function Invoke-Build \{\s+Invoke-Lint'
        $text | Should -Match "throw `"PowerShell checks failed"
    }
}

Describe 'build.ps1 Package' {
    BeforeAll {
        $script:Repository = Join-Path $TestDrive 'repository'
        $script:Package = & (Join-Path $Root 'build/New-ModulePackage.ps1') -ModulePath $Built -OutputPath (Join-Path $TestDrive 'packages')
    }

    It 'is a task of build.ps1 that packs the built module' {
        (Get-Command (Join-Path $Root 'build.ps1')).Parameters.Task.Attributes.ValidValues | Should -Contain 'Package'
        (Get-Content -Raw (Join-Path $Root 'build.ps1')) | Should -Match "'Package' \{ Invoke-Package \}"
    }

    It 'writes CriuPS.VERSION.nupkg with the module, its help, formats and types inside' {
        $Package.Name | Should -Be "CriuPS.$((Test-ModuleManifest (Join-Path $Built 'CriuPS.psd1')).Version).nupkg"
        Add-Type -AssemblyName System.IO.Compression.FileSystem
        $zip = [System.IO.Compression.ZipFile]::OpenRead($Package.FullName)
        try { $entries = $zip.Entries.FullName } finally { $zip.Dispose() }
        # System.IO.Hashing.dll: the digests of image files (XxHash128); PowerShell does not ship it.
        foreach ($file in 'CriuPS.psd1', 'CriuPS.dll', 'CriuPS.Engine.dll', 'System.IO.Hashing.dll', 'criups-engine', 'criups-init', 'CriuPS.Format.ps1xml', 'CriuPS.Types.ps1xml', 'en-US/CriuPS.dll-Help.xml', 'CriuPS.nuspec') {
            $entries | Should -Contain $file
        }
    }

    It 'installs with Install-PSResource from a local repository, imports and runs' {
        # A pwsh of its own, with a home of its own: the repository registration and the installed module land in
        # the test drive, not in the user's profile; the registration is removed at the end all the same.
        $testHome = Join-Path $TestDrive 'home'
        New-Item -ItemType Directory $testHome, $Repository -Force | Out-Null
        $installer = Join-Path $TestDrive 'install.ps1'
        Set-Content $installer @'
param($Repository, $Package, $Vector)
$ErrorActionPreference = 'Stop'
Register-PSResourceRepository -Name CriuPSTest -Uri $Repository -Trusted
try {
    Publish-PSResource -NupkgPath $Package -Repository CriuPSTest
    Install-PSResource -Name CriuPS -Repository CriuPSTest -Scope CurrentUser -TrustRepository -Quiet
    Import-Module CriuPS
    # A checkpoint runs the module's own program (criups-engine), which the package's zip keeps without its mode.
    $sleep = Start-Process sleep 1000 -PassThru
    try { $checkpoint = Checkpoint-Process -Id $sleep.Id -ImagePath (Join-Path $Repository 'image') -ShellJob }
    finally { $sleep | Stop-Process -Force -ErrorAction Ignore }
    [pscustomobject]@{
        ModuleBase = (Get-Module CriuPS).ModuleBase
        Cmdlets    = @(Get-Command -Module CriuPS).Count
        Image      = (Get-CheckpointImage -LiteralPath $Vector).Name
        Checkpoint = $checkpoint.Name
        Installed  = (Get-InstalledPSResource -Name CriuPS).Version.ToString()
    } | ConvertTo-Json -Compress
}
finally {
    Unregister-PSResourceRepository -Name CriuPSTest
    "REPOSITORIES $(@(Get-PSResourceRepository | Where-Object Name -EQ CriuPSTest).Count)"
}
'@
        $vector = Join-Path (Get-SharedInterop) 'criu-4.2/counter-dyn/images'
        $previousHome = $env:HOME
        try {
            $env:HOME = $testHome
            $output = & (Join-Path $PSHOME 'pwsh') -NoProfile -NonInteractive -File $installer $Repository $Package.FullName $vector 2>&1
        }
        finally { $env:HOME = $previousHome }
        $LASTEXITCODE | Should -Be 0 -Because ($output | Out-String)
        $result = $output | Where-Object { "$_".StartsWith('{') } | ConvertFrom-Json
        $result.ModuleBase | Should -BeLike "$testHome/*"
        $result.Cmdlets | Should -Be @(Get-Command -Module CriuPS).Count
        $result.Image | Should -Be 'counter-dyn'
        $result.Checkpoint | Should -Be 'sleep' -Because 'the installed module checkpoints with its own programs'
        $result.Installed | Should -Be (Test-ModuleManifest (Join-Path $Built 'CriuPS.psd1')).Version.ToString()
        $output | Should -Contain 'REPOSITORIES 0'
        Get-ChildItem $Repository -Filter 'CriuPS.*.nupkg' | Should -Not -BeNullOrEmpty
    }
}
