# Help: every exported cmdlet has full help, built from docs/*.md and the cmdlet metadata into
# out/CriuPS/en-US/CriuPS.dll-Help.xml by build/ConvertTo-MamlHelp.ps1, that agrees with the metadata; about_CriuPS
# resolves; and the converter refuses docs that are incomplete or wrong.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $common = [System.Management.Automation.Cmdlet]::CommonParameters
    $script:Cmdlets = @(Get-Command -Module CriuPS -CommandType Cmdlet | ForEach-Object {
            @{
                Name       = $_.Name
                Parameters = @($_.Parameters.Keys | Where-Object { $_ -notin $common } | ForEach-Object { @{ Parameter = $_ } })
            }
        })
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Common = [System.Management.Automation.Cmdlet]::CommonParameters
    $script:AllCmdlets = @('Checkpoint-Process', 'Export-CheckpointImageFile', 'Get-CheckpointImage', 'Get-LazyPageServer', 'Import-CheckpointImageFile',
        'Move-Process', 'Restore-Process', 'Start-LazyPageServer', 'Stop-LazyPageServer', 'Test-CheckpointImage', 'Test-CheckpointSupport', 'Wait-LazyRestore')

    # The text of a help node made of paragraphs (description, remarks, alerts), or '' when there is none.
    function Get-HelpText($Node) { (@($Node | Where-Object { $_ } | ForEach-Object { $_.Text }) -join "`n").Trim() }
}

Describe 'The module' {
    It 'exports the cmdlets whose help is tested here' {
        @(Get-Command -Module CriuPS -CommandType Cmdlet).Name | Sort-Object | Should -Be $AllCmdlets
    }

    It 'ships its MAML help and about topic in en-US' {
        $enUS = Join-Path (Get-Module CriuPS).ModuleBase 'en-US'
        $maml = Join-Path $enUS 'CriuPS.dll-Help.xml'
        Test-Path $maml | Should -BeTrue
        @(([xml](Get-Content -Raw $maml)).helpItems.command).Count | Should -Be @(Get-Command -Module CriuPS -CommandType Cmdlet).Count
        Test-Path (Join-Path $enUS 'about_CriuPS.help.txt') | Should -BeTrue
    }
}

Describe 'Help for <Name>' -ForEach $Cmdlets {
    BeforeAll {
        $command = Get-Command $Name
        $help = Get-Help $Name -Full
        $helpParameters = @($help.parameters.parameter | Where-Object { $_ })
    }

    It 'has a synopsis of its own, not the generated one' {
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis.Trim() | Should -Not -BeLike "$Name *" -Because 'help generated from the metadata alone repeats the syntax as synopsis'
        $help.Synopsis | Should -Not -Match 'CommonParameters'
    }

    It 'has a description' {
        Get-HelpText $help.description | Should -Not -BeNullOrEmpty
    }

    It 'has at least two examples, each with code and an explanation' {
        $examples = @($help.examples.example | Where-Object { $_ })
        $examples.Count | Should -BeGreaterOrEqual 2
        foreach ($example in $examples) {
            $example.code | Should -Not -BeNullOrEmpty -Because $example.title
            Get-HelpText $example.remarks | Should -Not -BeNullOrEmpty -Because $example.title
        }
    }

    It 'documents -<Parameter> with a description' -ForEach $Parameters {
        $entry = $helpParameters | Where-Object name -CEQ $Parameter
        $entry | Should -Not -BeNullOrEmpty -Because "$Name has -$Parameter"
        Get-HelpText $entry.description | Should -Not -BeNullOrEmpty
    }

    It 'documents no parameter that it does not have, and no common parameter' {
        $names = @($helpParameters | ForEach-Object name)
        $names | Where-Object { $_ -cnotin $command.Parameters.Keys } | Should -BeNullOrEmpty
        $names | Where-Object { $_ -in $Common } | Should -BeNullOrEmpty -Because 'common parameters are not documented individually'
    }

    It 'states the pipeline input of -<Parameter> as the metadata does' -ForEach $Parameters {
        $sets = $command.Parameters[$Parameter].ParameterSets.Values
        $byValue = [bool]($sets | Where-Object ValueFromPipeline)
        $byPropertyName = [bool]($sets | Where-Object ValueFromPipelineByPropertyName)
        $entry = $helpParameters | Where-Object name -CEQ $Parameter
        $entry.pipelineInput | Should -Match $(if ($byValue -or $byPropertyName) { '^true\b' } else { '^false$' })
        $entry.pipelineInput -match '\bByValue\b' | Should -Be $byValue -Because "help says '$($entry.pipelineInput)'"
        $entry.pipelineInput -match '\bByPropertyName\b' | Should -Be $byPropertyName -Because "help says '$($entry.pipelineInput)'"
    }

    It 'states whether -<Parameter> is required, its position, aliases and wildcards as the metadata does' -ForEach $Parameters {
        $metadata = $command.Parameters[$Parameter]
        $infos = @($command.ParameterSets | ForEach-Object { $_.Parameters | Where-Object Name -EQ $Parameter })
        $entry = $helpParameters | Where-Object name -CEQ $Parameter
        $entry.required | Should -BeIn @($infos | ForEach-Object { $_.IsMandatory.ToString() })
        $entry.position | Should -BeIn @($infos | ForEach-Object { if ($_.Position -eq [int]::MinValue) { 'named' } else { [string]$_.Position } })
        $entry.aliases | Should -Be $(if ($metadata.Aliases.Count) { $metadata.Aliases -join ', ' } else { 'none' })
        $wildcards = [bool]($metadata.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })
        $entry.globbing | Should -Be $wildcards.ToString()
    }

    It 'shows one syntax per parameter set, with the parameters of that set' {
        $items = @($help.syntax.syntaxItem | Where-Object { $_ })
        $items.Count | Should -Be $command.ParameterSets.Count
        $shown = @($items | ForEach-Object { (@($_.parameter | ForEach-Object name) | Sort-Object) -join ' ' })
        foreach ($set in $command.ParameterSets) {
            $expected = (@($set.Parameters.Name | Where-Object { $_ -notin $Common }) | Sort-Object) -join ' '
            $shown | Should -Contain $expected -Because "parameter set $($set.Name)"
        }
    }

    It 'names its output types and the types it takes from the pipeline' {
        $outputs = @($help.returnValues.returnValue | Where-Object { $_ } | ForEach-Object { $_.type.name })
        foreach ($type in $command.OutputType) { $outputs | Should -Contain $type.Name }
        $inputs = @($help.inputTypes.inputType | Where-Object { $_ } | ForEach-Object { $_.type.name })
        foreach ($parameter in $command.Parameters.Values | Where-Object { $_.ParameterSets.Values.ValueFromPipeline -contains $true }) {
            $type = $parameter.ParameterType
            if ($type.IsArray) { $type = $type.GetElementType() }
            $inputs | Should -Contain $type.FullName -Because "-$($parameter.Name) takes it from the pipeline"
        }
    }

    It 'has notes and links to about_CriuPS' {
        Get-HelpText $help.alertSet.alert | Should -Match 'root'
        @($help.relatedLinks.navigationLink | ForEach-Object linkText) | Should -Contain 'about_CriuPS'
    }
}

Describe 'about_CriuPS' {
    It 'resolves with Get-Help and explains -ShellJob and -LeaveRunning' {
        $about = Get-Help about_CriuPS -ErrorAction Stop | Out-String
        $about | Should -Match 'about_CriuPS'
        $about | Should -Match 'SHORT DESCRIPTION'
        $about | Should -Match '-ShellJob'
        $about | Should -Match '-LeaveRunning'
    }
}

Describe 'build/ConvertTo-MamlHelp.ps1' {
    BeforeAll {
        $root = Get-RepositoryRoot
        $script:Converter = Join-Path $root 'build/ConvertTo-MamlHelp.ps1'
        $script:ModuleManifest = Join-Path $root 'out/CriuPS/CriuPS.psd1'
        $script:Docs = Join-Path $root 'docs'
        $script:About = Join-Path $root 'en-US'

        # Runs the converter in a pwsh of its own, as the build does, on DOCS; returns its exit code, output and MAML path.
        function Invoke-Converter([string]$DocsPath) {
            $out = Join-Path $TestDrive "out-$([guid]::NewGuid().ToString('n'))"
            $output = & (Join-Path $PSHOME 'pwsh') -NoProfile -NonInteractive -File $Converter -ModulePath $ModuleManifest `
                -DocsPath $DocsPath -AboutPath $About -OutputPath $out 2>&1
            [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($output | Out-String); Maml = Join-Path $out 'CriuPS.dll-Help.xml' }
        }

        # A copy of docs/ with FILE's text changed by CHANGE (a script block from text to text), or FILE deleted.
        function New-DocsCopy([string]$File, [scriptblock]$Change) {
            $copy = Join-Path $TestDrive "docs-$([guid]::NewGuid().ToString('n'))"
            Copy-Item $Docs $copy -Recurse
            $path = Join-Path $copy $File
            if ($Change) { Set-Content $path (& $Change (Get-Content -Raw $path)) -NoNewline } else { Remove-Item $path }
            $copy
        }
    }

    It 'turns the docs into well-formed MAML with every cmdlet and the about topic' {
        $result = Invoke-Converter $Docs
        $result.ExitCode | Should -Be 0 -Because $result.Output
        $maml = [xml](Get-Content -Raw $result.Maml)
        @($maml.helpItems.command.details.name) | Sort-Object | Should -Be $AllCmdlets
        Test-Path (Join-Path (Split-Path $result.Maml) 'about_CriuPS.help.txt') | Should -BeTrue
    }

    It 'fails, writing nothing, when <Case>' -ForEach @(
        @{ Case = 'an exported cmdlet has no doc'; File = 'Restore-Process.md'; Change = $null
            Message = 'Restore-Process is exported and has no help source' }
        @{ Case = 'a doc documents a parameter that does not exist'; File = 'Checkpoint-Process.md'
            Change = { param($text) $text -replace '## INPUTS', "### -Bogus`n`nNot a parameter.`n`n## INPUTS" }
            Message = 'documents -Bogus, which Checkpoint-Process does not have' }
        @{ Case = 'a doc documents a parameter by an alias'; File = 'Checkpoint-Process.md'
            Change = { param($text) $text -replace '### -Id\b', '### -Pid' }
            Message = 'documents -Pid, which is an alias of -Id' }
        @{ Case = 'a doc misses a parameter'; File = 'Checkpoint-Process.md'
            Change = { param($text) $text -replace '(?s)### -Force\n.*?(?=### )', '' }
            Message = 'misses -Force' }
        @{ Case = 'a doc has fewer than two examples'; File = 'Restore-Process.md'
            Change = { param($text) $text -replace '(?s)### Example 2:.*?(?=## PARAMETERS)', '' }
            Message = '1 example(s); every cmdlet needs at least 2' }
        @{ Case = 'a doc leaves out a section'; File = 'Get-CheckpointImage.md'
            Change = { param($text) $text -replace '(?s)## NOTES\n.*?(?=## RELATED LINKS)', '' }
            Message = "missing section '## NOTES'" }
    ) {
        $result = Invoke-Converter (New-DocsCopy $File $Change)
        $result.ExitCode | Should -Be 1 -Because $result.Output
        $result.Output | Should -Match ([regex]::Escape($Message))
        Test-Path $result.Maml | Should -BeFalse
    }
}
