#!/usr/bin/env pwsh
#Requires -Version 7.4
<#
.SYNOPSIS
    Builds the module's MAML help (en-US/CriuPS.dll-Help.xml) from docs/*.md and the built module's cmdlet metadata.
.DESCRIPTION
    The help source is one Markdown file per exported cmdlet in docs/, in the schema that docs/README.md describes.
    The Markdown holds what only a person can write: synopsis, description, examples, parameter descriptions,
    inputs, outputs, notes and links. Everything the cmdlet metadata knows (parameter sets, types, mandatory,
    positions, pipeline input, aliases, wildcards) comes from Get-Command on the built module, never from the
    Markdown, so the help cannot drift from the code.

    The script fails, listing every problem with its file and line, when a doc does not follow the schema, when an
    exported cmdlet has no doc (or a doc names no exported cmdlet), when a doc documents a parameter that does not
    exist or misses one that does (-WhatIf and -Confirm included where the cmdlet supports them; the common
    parameters are not documented individually), when it has fewer than two examples, or when its INPUTS or
    OUTPUTS leave out a type of the metadata. Nothing is written then.

    It also copies the about topics (about_*.help.txt) next to the MAML, and warns when the generated SYNTAX
    section of a doc is out of date (-UpdateMarkdown rewrites it).

    Run it in a PowerShell process of its own, as build.ps1 does: it imports the built module, and a session that
    has already loaded an older CriuPS.dll would report that assembly's metadata.
.PARAMETER ModulePath
    The built module's manifest. Default: out/CriuPS/CriuPS.psd1.
.PARAMETER DocsPath
    The folder of the Markdown help, one CMDLET-NAME.md per exported cmdlet (README.md there is the schema). Default: docs.
.PARAMETER AboutPath
    The folder of the about topics (about_*.help.txt). Default: en-US.
.PARAMETER OutputPath
    Where CriuPS.dll-Help.xml and the about topics go. Default: the en-US folder of the built module.
.PARAMETER UpdateMarkdown
    Rewrites the SYNTAX section of each doc from the metadata (without it a stale SYNTAX section is a warning).
.EXAMPLE
    dotnet pwsh -NoProfile ./build/ConvertTo-MamlHelp.ps1 -UpdateMarkdown

    After changing a cmdlet's parameters and building: regenerates the help and refreshes the SYNTAX sections.
#>
[CmdletBinding()]
param(
    [string]$ModulePath = (Join-Path $PSScriptRoot '../out/CriuPS/CriuPS.psd1'),
    [string]$DocsPath = (Join-Path $PSScriptRoot '../docs'),
    [string]$AboutPath = (Join-Path $PSScriptRoot '../en-US'),
    [string]$OutputPath,
    [switch]$UpdateMarkdown
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$Sections = 'SYNOPSIS', 'SYNTAX', 'DESCRIPTION', 'EXAMPLES', 'PARAMETERS', 'INPUTS', 'OUTPUTS', 'NOTES', 'RELATED LINKS'
$MinimumExamples = 2
$Namespaces = @{
    maml    = 'http://schemas.microsoft.com/maml/2004/10'
    command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
    dev     = 'http://schemas.microsoft.com/maml/dev/2004/10'
    MSHelp  = 'http://msdn.microsoft.com/mshelp'
}
$script:Problems = [System.Collections.Generic.List[string]]::new()

function Add-Problem([string]$File, [int]$Line, [string]$Message) {
    $where = if ($Line -gt 0) { "${File}:$Line" } else { $File }
    $script:Problems.Add("${where}: $Message")
}

#region Markdown

# One line of a doc, with its number for messages.
function New-Line([string]$Text, [int]$Number) { [pscustomobject]@{ Text = $Text; Line = $Number } }

function Test-Fence([string]$Text) { $Text -match '^(```|~~~)' }

# Splits a doc into its title and ## sections (lines inside code fences are never headings).
function Read-HelpDocument([string]$Path) {
    $file = [IO.Path]::GetFileName($Path)
    $doc = [pscustomobject]@{ File = $file; Path = $Path; Name = $null; Sections = [ordered]@{}; Lines = [IO.File]::ReadAllLines($Path) }
    $current = $null
    $inFence = $false
    $fenceLine = 0
    $lastIndex = -1
    for ($i = 0; $i -lt $doc.Lines.Count; $i++) {
        $text = $doc.Lines[$i].TrimEnd()
        $n = $i + 1
        if (Test-Fence $text) {
            $inFence = -not $inFence
            $fenceLine = $n
        }
        elseif (-not $inFence -and $text -match '^# (.+)$') {
            if ($null -ne $doc.Name -or $null -ne $current) { Add-Problem $file $n "a second '# ' heading; a doc has one, the cmdlet's name, on its first line" }
            else { $doc.Name = $Matches[1].Trim() }
            continue
        }
        elseif (-not $inFence -and $text -match '^## (.+)$') {
            $name = $Matches[1].Trim()
            $index = [array]::IndexOf($Sections, $name)
            # The lines of a section in error go nowhere (one problem is enough).
            if ($index -lt 0) { Add-Problem $file $n "unknown section '## $name'; the sections are, in this order: $($Sections -join ', ')"; $current = [System.Collections.Generic.List[object]]::new(); continue }
            if ($doc.Sections.Contains($name)) { Add-Problem $file $n "'## $name' appears twice"; $current = [System.Collections.Generic.List[object]]::new(); continue }
            if ($index -lt $lastIndex) { Add-Problem $file $n "'## $name' is out of order; the sections are, in this order: $($Sections -join ', ')" }
            $lastIndex = [Math]::Max($lastIndex, $index)
            $current = [System.Collections.Generic.List[object]]::new()
            $doc.Sections[$name] = [pscustomobject]@{ Line = $n; Lines = $current }
            continue
        }
        elseif (-not $inFence -and $text -match '^#{1,2}[^#]' ) {
            Add-Problem $file $n "malformed heading '$text'"
            continue
        }
        if ($null -ne $current) { $current.Add((New-Line $text $n)) }
        elseif ($text.Trim() -ne '') { Add-Problem $file $n "text outside a '## ' section" }
    }
    if ($inFence) { Add-Problem $file $fenceLine 'a code fence is never closed' }
    if ($null -eq $doc.Name) { Add-Problem $file 1 "no '# CMDLET-NAME' title" }
    foreach ($name in $Sections) {
        if (-not $doc.Sections.Contains($name)) { Add-Problem $file 0 "missing section '## $name'" }
    }
    $doc
}

# Splits the lines of a section into ### subsections; nothing but blank lines may come before the first.
function Split-Subsection([string]$File, [string]$Section, $Lines) {
    $result = [System.Collections.Generic.List[object]]::new()
    $current = $null
    $inFence = $false
    foreach ($line in $Lines) {
        if (Test-Fence $line.Text) { $inFence = -not $inFence }
        elseif (-not $inFence -and $line.Text -match '^### (.+)$') {
            $current = [pscustomobject]@{ Title = $Matches[1].Trim(); Line = $line.Line; Lines = [System.Collections.Generic.List[object]]::new() }
            $result.Add($current)
            continue
        }
        elseif (-not $inFence -and $line.Text -match '^#') {
            Add-Problem $File $line.Line "unexpected heading in '## $Section' (only '### ' subsections belong there)"
            continue
        }
        if ($null -ne $current) { $current.Lines.Add($line) }
        elseif ($line.Text.Trim() -ne '') { Add-Problem $File $line.Line "text in '## $Section' before its first '### ' subsection" }
    }
    $result
}

# Markdown inline markup to console text: links become their text (and address, when absolute), emphasis goes;
# `code` keeps its backticks, as in PowerShell's own help.
function ConvertFrom-Inline([string]$Text) {
    $Text = [regex]::Replace($Text, '\[([^\]]+)\]\(([^)\s]*)\)', {
            param($m)
            if ($m.Groups[2].Value -match '^https?://') { "$($m.Groups[1].Value) ($($m.Groups[2].Value))" } else { $m.Groups[1].Value }
        })
    $Text -replace '\*\*|__', ''
}

# Lines of prose to paragraphs: blank lines separate paragraphs, each list item is a paragraph of its own
# (continuation lines indented), a fenced block is one paragraph keeping its lines. HTML comments are dropped.
function ConvertTo-Paragraph([string]$File, [string]$Where, $Lines) {
    $paragraphs = [System.Collections.Generic.List[string]]::new()
    $buffer = [System.Collections.Generic.List[string]]::new()
    $fence = $null
    $inComment = $false
    foreach ($line in $Lines) {
        $text = $line.Text
        if ($null -ne $fence) {
            if (Test-Fence $text) {
                if ($fence.Count -gt 0) { $paragraphs.Add(($fence | ForEach-Object { "    $_" }) -join "`n") }
                $fence = $null
            }
            else { $fence.Add($text) }
            continue
        }
        if ($inComment) { if ($text -match '-->') { $inComment = $false }; continue }
        if ($text -match '^\s*<!--') { $inComment = $text -notmatch '-->'; continue }
        $flush = $buffer.Count -gt 0 -and ($text.Trim() -eq '' -or (Test-Fence $text) -or $text -match '^\s*([-*]|\d+\.)\s')
        if ($flush) {
            $paragraphs.Add((ConvertFrom-Inline ($buffer -join ' ')))
            $buffer.Clear()
        }
        if (Test-Fence $text) { $fence = [System.Collections.Generic.List[string]]::new(); continue }
        if ($text -match '^#') { Add-Problem $File $line.Line "unexpected heading in $Where"; continue }
        if ($text.Trim() -ne '') { $buffer.Add($text.Trim()) }
    }
    if ($buffer.Count -gt 0) { $paragraphs.Add((ConvertFrom-Inline ($buffer -join ' '))) }
    , $paragraphs.ToArray()
}

# The parsed content of a doc: what the MAML needs, or problems.
function ConvertFrom-HelpDocument($Doc) {
    $file = $Doc.File
    $help = [ordered]@{ Synopsis = ''; Description = @(); Examples = @(); Parameters = [ordered]@{}; Inputs = @(); Outputs = @(); Notes = @(); Links = @() }
    $s = $Doc.Sections

    if ($s.Contains('SYNOPSIS')) {
        $paragraphs = ConvertTo-Paragraph $file "'## SYNOPSIS'" $s.SYNOPSIS.Lines
        if ($paragraphs.Count -ne 1) { Add-Problem $file $s.SYNOPSIS.Line "'## SYNOPSIS' must be one paragraph (it has $($paragraphs.Count))" }
        else { $help.Synopsis = $paragraphs[0] }
    }
    if ($s.Contains('DESCRIPTION')) {
        $help.Description = ConvertTo-Paragraph $file "'## DESCRIPTION'" $s.DESCRIPTION.Lines
        if ($help.Description.Count -eq 0) { Add-Problem $file $s.DESCRIPTION.Line "'## DESCRIPTION' is empty" }
    }
    if ($s.Contains('EXAMPLES')) {
        $examples = @(Split-Subsection $file 'EXAMPLES' $s.EXAMPLES.Lines)
        $number = 0
        $help.Examples = foreach ($example in $examples) {
            $number++
            if ($example.Title -notmatch '^Example (\d+): (\S.*)$') { Add-Problem $file $example.Line "an example's heading must read '### Example ${number}: TITLE'"; continue }
            if ([int]$Matches[1] -ne $number) { Add-Problem $file $example.Line "example $($Matches[1]) should be numbered $number" }
            $title = $Matches[2]
            $body = @($example.Lines)
            $start = 0
            while ($start -lt $body.Count -and $body[$start].Text.Trim() -eq '') { $start++ }
            if ($start -ge $body.Count -or $body[$start].Text -ne '```powershell') { Add-Problem $file $example.Line "example $number must begin with a '``````powershell' code block"; continue }
            $end = $start + 1
            while ($end -lt $body.Count -and -not (Test-Fence $body[$end].Text)) { $end++ }
            $code = if ($end -gt $start + 1) { (@($body[($start + 1)..($end - 1)] | ForEach-Object Text) -join "`n").Trim("`n") } else { '' }
            if ($code.Trim() -eq '') { Add-Problem $file $body[$start].Line "example $number has an empty code block" }
            $rest = if ($end + 1 -lt $body.Count) { $body[($end + 1)..($body.Count - 1)] } else { @() }
            foreach ($line in $rest) {
                if ($line.Text -eq '```powershell') { Add-Problem $file $line.Line "example $number has a second powershell code block; make it an example of its own" }
            }
            $remarks = ConvertTo-Paragraph $file "example $number" $rest
            if ($remarks.Count -eq 0) { Add-Problem $file $example.Line "example $number explains nothing: write what it does after the code block" }
            [pscustomobject]@{ Title = "Example ${number}: $title"; Code = $code; Remarks = $remarks }
        }
        $help.Examples = @($help.Examples)
        if ($examples.Count -lt $MinimumExamples) { Add-Problem $file $s.EXAMPLES.Line "$($examples.Count) example(s); every cmdlet needs at least $MinimumExamples" }
    }
    if ($s.Contains('PARAMETERS')) {
        foreach ($parameter in @(Split-Subsection $file 'PARAMETERS' $s.PARAMETERS.Lines)) {
            if ($parameter.Title -notmatch '^-([A-Za-z][A-Za-z0-9]*)$') { Add-Problem $file $parameter.Line "a parameter's heading must read '### -NAME'"; continue }
            $name = $Matches[1]
            if ($help.Parameters.Contains($name)) { Add-Problem $file $parameter.Line "-$name is documented twice"; continue }
            $lines = [System.Collections.Generic.List[object]]::new($parameter.Lines)
            while ($lines.Count -gt 0 -and $lines[$lines.Count - 1].Text.Trim() -eq '') { $lines.RemoveAt($lines.Count - 1) }
            $default = $null
            if ($lines.Count -gt 0 -and $lines[$lines.Count - 1].Text -match '^Default value:\s*(\S.*)$') {
                $default = ConvertFrom-Inline $Matches[1]
                $lines.RemoveAt($lines.Count - 1)
            }
            foreach ($line in $lines) {
                if ($line.Text -match '^Default value:') { Add-Problem $file $line.Line "'Default value:' must be the last line of -$name's description" }
            }
            $description = ConvertTo-Paragraph $file "-$name" $lines
            if ($description.Count -eq 0) { Add-Problem $file $parameter.Line "-$name has no description" }
            $help.Parameters[$name] = [pscustomobject]@{ Name = $name; Line = $parameter.Line; Description = $description; Default = $default }
        }
    }
    foreach ($kind in 'INPUTS', 'OUTPUTS') {
        if (-not $s.Contains($kind)) { continue }
        $types = @(foreach ($type in @(Split-Subsection $file $kind $s[$kind].Lines)) {
                $description = ConvertTo-Paragraph $file "'### $($type.Title)'" $type.Lines
                if ($description.Count -eq 0) { Add-Problem $file $type.Line "'### $($type.Title)' in '## $kind' has no description" }
                [pscustomobject]@{ Type = $type.Title; Description = $description }
            })
        if ($types.Count -eq 0) { Add-Problem $file $s[$kind].Line "'## $kind' lists no type (write '### None' when there is none)" }
        if ($kind -eq 'INPUTS') { $help.Inputs = $types } else { $help.Outputs = $types }
    }
    if ($s.Contains('NOTES')) { $help.Notes = ConvertTo-Paragraph $file "'## NOTES'" $s.NOTES.Lines }
    if ($s.Contains('RELATED LINKS')) {
        $help.Links = @(foreach ($line in $s['RELATED LINKS'].Lines) {
                if ($line.Text.Trim() -eq '') { continue }
                if ($line.Text -match '^- \[([^\]]+)\]\(([^)\s]*)\)$') {
                    $text, $address = $Matches[1], $Matches[2]
                    [pscustomobject]@{ Text = $text; Uri = if ($address -match '^https?://') { $address } else { '' } }
                }
                elseif ($line.Text -match '^- ([^\[\]()]+)$') { [pscustomobject]@{ Text = $Matches[1].Trim(); Uri = '' } }
                else { Add-Problem $file $line.Line "a related link must read '- [TEXT](ADDRESS)' or '- TEXT'" }
            })
    }
    [pscustomobject]$help
}

#endregion

#region Metadata

function Get-TypeDisplayName([type]$Type) {
    if ($Type.IsArray) { return (Get-TypeDisplayName $Type.GetElementType()) + '[]' }
    if ($Type.IsGenericType) {
        $arguments = ($Type.GenericTypeArguments | ForEach-Object { Get-TypeDisplayName $_ }) -join ', '
        return ($Type.Name -replace '`\d+$', '') + "[$arguments]"
    }
    $Type.Name
}

function Get-TypeFullName([type]$Type) {
    if ($Type.IsArray) { return (Get-TypeFullName $Type.GetElementType()) + '[]' }
    if ($Type.IsGenericType) {
        $arguments = ($Type.GenericTypeArguments | ForEach-Object { Get-TypeFullName $_ }) -join ', '
        return ($Type.GetGenericTypeDefinition().FullName -replace '`\d+$', '') + "[$arguments]"
    }
    $Type.FullName
}

function Format-PipelineInput([bool]$ByValue, [bool]$ByPropertyName) {
    if ($ByValue -and $ByPropertyName) { 'True (ByPropertyName, ByValue)' }
    elseif ($ByValue) { 'True (ByValue)' }
    elseif ($ByPropertyName) { 'True (ByPropertyName)' }
    else { 'False' }
}

# The parameters a doc must describe: every parameter but the common ones (-WhatIf and -Confirm included).
function Get-DocumentedParameterName($Command) {
    @($Command.Parameters.Keys | Where-Object { $_ -notin [System.Management.Automation.Cmdlet]::CommonParameters })
}

# A parameter as MAML describes it, from one parameter set's view (or merged over all its sets: required and
# position from the default set when it has the parameter, else the first; pipeline input from any set).
function Get-ParameterFact($Command, [string]$Name, $Set) {
    $infos = if ($Set) { @($Set.Parameters | Where-Object Name -EQ $Name) }
    else {
        $all = @($Command.ParameterSets | ForEach-Object { $_.Parameters | Where-Object Name -EQ $Name })
        $default = @($Command.ParameterSets | Where-Object IsDefault | ForEach-Object { $_.Parameters | Where-Object Name -EQ $Name })
        @($default) + @($all | Where-Object { $_ -notin $default })
    }
    $primary = $infos[0]
    $type = $primary.ParameterType
    [pscustomobject]@{
        Name           = $Name
        Type           = $type
        IsSwitch       = $type -eq [System.Management.Automation.SwitchParameter]
        Required       = $primary.IsMandatory
        Position       = if ($primary.Position -eq [int]::MinValue) { 'named' } else { [string]$primary.Position }
        PipelineInput  = Format-PipelineInput ([bool]($infos | Where-Object ValueFromPipeline)) ([bool]($infos | Where-Object ValueFromPipelineByPropertyName))
        Globbing       = [bool]($primary.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })
        Aliases        = if ($primary.Aliases.Count) { $primary.Aliases -join ', ' } else { 'none' }
        VariableLength = $type.IsArray
    }
}

# A parameter set's parameters in the order PowerShell shows them: positional by position, then mandatory,
# then the others, -WhatIf and -Confirm last; common parameters left out.
function Get-SyntaxParameterName($Set) {
    $own = @($Set.Parameters | Where-Object { $_.Name -notin [System.Management.Automation.Cmdlet]::CommonParameters })
    $positional = @($own | Where-Object Position -NE ([int]::MinValue) | Sort-Object Position)
    $named = @($own | Where-Object Position -EQ ([int]::MinValue))
    $shouldProcess = 'WhatIf', 'Confirm'
    $ownNames = @($own | ForEach-Object Name)
    @($positional | ForEach-Object Name) +
    @($named | Where-Object { $_.IsMandatory -and $_.Name -notin $shouldProcess } | ForEach-Object Name) +
    @($named | Where-Object { -not $_.IsMandatory -and $_.Name -notin $shouldProcess } | ForEach-Object Name) +
    @($shouldProcess | Where-Object { $_ -in $ownNames })
}

function Test-HelpAgainstCommand($Doc, $Help, $Command) {
    $file = $Doc.File
    $expected = Get-DocumentedParameterName $Command
    foreach ($name in $Help.Parameters.Keys) {
        if ($name -cin $expected) { continue }
        $line = $Help.Parameters[$name].Line
        $real = $Command.Parameters.Values | Where-Object { $_.Name -eq $name -or $name -in $_.Aliases } | Select-Object -First 1
        if ($name -in [System.Management.Automation.Cmdlet]::CommonParameters) { Add-Problem $file $line "-$name is a common parameter; common parameters are not documented individually" }
        elseif ($real -and $real.Name -ieq $name) { Add-Problem $file $line "documents -$name; the parameter is spelt -$($real.Name)" }
        elseif ($real) { Add-Problem $file $line "documents -$name, which is an alias of -$($real.Name); document -$($real.Name)" }
        else { Add-Problem $file $line "documents -$name, which $($Command.Name) does not have" }
    }
    foreach ($name in $expected) {
        if ($name -cnotin @($Help.Parameters.Keys)) { Add-Problem $file $Doc.Sections.PARAMETERS.Line "misses -${name}: add '### -$name' with its description" }
    }
    $inputs = @($Help.Inputs | ForEach-Object Type)
    foreach ($parameter in $Command.Parameters.Values) {
        $byValue = $parameter.ParameterSets.Values | Where-Object ValueFromPipeline
        if (-not $byValue) { continue }
        $type = $parameter.ParameterType
        if ($type.IsArray) { $type = $type.GetElementType() }
        $name = Get-TypeFullName $type
        if ($name -notin $inputs) { Add-Problem $file $Doc.Sections.INPUTS.Line "'## INPUTS' must list '### $name' (-$($parameter.Name) takes it from the pipeline)" }
    }
    $outputs = @($Help.Outputs | ForEach-Object Type)
    foreach ($type in @($Command.OutputType)) {
        if ($type.Name -notin $outputs) { Add-Problem $file $Doc.Sections.OUTPUTS.Line "'## OUTPUTS' must list '### $($type.Name)' (the cmdlet's OutputType)" }
    }
}

# The SYNTAX section as the metadata says it, in Markdown.
function Get-SyntaxMarkdown($Command) {
    $sets = @($Command.ParameterSets | Sort-Object { -not $_.IsDefault })
    $lines = foreach ($set in $sets) {
        if ($sets.Count -gt 1) {
            $default = if ($set.IsDefault) { ' (Default)' } else { '' }
            "### $($set.Name)$default"
            ''
        }
        '```'
        "$($Command.Name) $set"
        '```'
        ''
    }
    @($lines)
}

#endregion

#region MAML

function Open-Element([string]$QualifiedName, [System.Collections.IDictionary]$Attributes) {
    $prefix, $local = $QualifiedName.Split(':')
    $script:Writer.WriteStartElement($prefix, $local, $Namespaces[$prefix])
    if ($Attributes) { foreach ($key in $Attributes.Keys) { $script:Writer.WriteAttributeString($key, [string]$Attributes[$key]) } }
}

function Close-Element { $script:Writer.WriteEndElement() }

function Write-Element([string]$QualifiedName, [string]$Text, [System.Collections.IDictionary]$Attributes) {
    Open-Element $QualifiedName $Attributes
    if ($Text) { $script:Writer.WriteString($Text) }
    $script:Writer.WriteFullEndElement()
}

function Write-Paragraphs([string]$QualifiedName, [string[]]$Paragraphs) {
    Open-Element $QualifiedName
    foreach ($paragraph in $Paragraphs) { Write-Element 'maml:para' $paragraph }
    $script:Writer.WriteFullEndElement()
}

function Write-Parameter($Fact, $Doc, [bool]$InSyntax) {
    Open-Element 'command:parameter' ([ordered]@{
            required       = $Fact.Required.ToString().ToLowerInvariant()
            variableLength = $Fact.VariableLength.ToString().ToLowerInvariant()
            globbing       = $Fact.Globbing.ToString().ToLowerInvariant()
            pipelineInput  = $Fact.PipelineInput
            position       = $Fact.Position
            aliases        = $Fact.Aliases
        })
    Write-Element 'maml:name' $Fact.Name
    Write-Paragraphs 'maml:description' $Doc.Description
    if (-not ($InSyntax -and $Fact.IsSwitch)) {
        Write-Element 'command:parameterValue' (Get-TypeDisplayName $Fact.Type) ([ordered]@{ required = (-not $Fact.IsSwitch).ToString().ToLowerInvariant(); variableLength = $Fact.VariableLength.ToString().ToLowerInvariant() })
    }
    Open-Element 'dev:type'
    Write-Element 'maml:name' (Get-TypeFullName $Fact.Type)
    Write-Element 'maml:uri' ''
    Close-Element
    $default = if ($Doc.Default) { $Doc.Default } elseif ($Fact.IsSwitch) { 'False' } else { 'None' }
    Write-Element 'dev:defaultValue' $default
    Close-Element
}

function Write-TypeList([string]$ListName, [string]$ItemName, $Types) {
    Open-Element $ListName
    foreach ($type in $Types) {
        Open-Element $ItemName
        Open-Element 'dev:type'
        Write-Element 'maml:name' $type.Type
        Close-Element
        Write-Paragraphs 'maml:description' $type.Description
        Close-Element
    }
    Close-Element
}

function Write-CommandHelp($Help, $Command) {
    Open-Element 'command:command'
    foreach ($prefix in 'maml', 'dev', 'MSHelp') { $script:Writer.WriteAttributeString('xmlns', $prefix, 'http://www.w3.org/2000/xmlns/', $Namespaces[$prefix]) }

    Open-Element 'command:details'
    Write-Element 'command:name' $Command.Name
    Write-Paragraphs 'maml:description' $Help.Synopsis
    Write-Element 'command:verb' $Command.Verb
    Write-Element 'command:noun' $Command.Noun
    Close-Element

    Write-Paragraphs 'maml:description' $Help.Description

    Open-Element 'command:syntax'
    foreach ($set in @($Command.ParameterSets | Sort-Object { -not $_.IsDefault })) {
        Open-Element 'command:syntaxItem'
        Write-Element 'maml:name' $Command.Name
        foreach ($name in Get-SyntaxParameterName $set) {
            Write-Parameter (Get-ParameterFact $Command $name $set) $Help.Parameters[$name] $true
        }
        Close-Element
    }
    Close-Element

    Open-Element 'command:parameters'
    foreach ($name in $Help.Parameters.Keys) {
        Write-Parameter (Get-ParameterFact $Command $name $null) $Help.Parameters[$name] $false
    }
    Close-Element

    Write-TypeList 'command:inputTypes' 'command:inputType' $Help.Inputs
    Write-TypeList 'command:returnValues' 'command:returnValue' $Help.Outputs

    Open-Element 'maml:alertSet'
    Write-Paragraphs 'maml:alert' $Help.Notes
    Close-Element

    Open-Element 'command:examples'
    foreach ($example in $Help.Examples) {
        Open-Element 'command:example'
        Write-Element 'maml:title' "---------- $($example.Title) ----------"
        Write-Element 'dev:code' $example.Code
        # An empty last paragraph keeps a blank line between one example and the next title, as Get-Help shows them.
        Write-Paragraphs 'dev:remarks' (@($example.Remarks) + '')
        Close-Element
    }
    Close-Element

    Open-Element 'maml:relatedLinks'
    foreach ($link in $Help.Links) {
        Open-Element 'maml:navigationLink'
        Write-Element 'maml:linkText' $link.Text
        Write-Element 'maml:uri' $link.Uri
        Close-Element
    }
    Close-Element

    Close-Element
}

#endregion

$module = Import-Module (Resolve-Path -LiteralPath $ModulePath).ProviderPath -Force -PassThru -ErrorAction Stop
if (-not $OutputPath) { $OutputPath = Join-Path $module.ModuleBase 'en-US' }
$commands = @($module.ExportedCmdlets.Values | Sort-Object Name)
$helpFile = "$($module.Name).dll-Help.xml"
foreach ($command in $commands) {
    if ($command.HelpFile -ne $helpFile) { throw "$($command.Name) is in $($command.DLL), whose help file is $($command.HelpFile); this script writes only $helpFile." }
}

$docFiles = @(Get-ChildItem -LiteralPath $DocsPath -Filter '*.md' -File | Where-Object Name -NE 'README.md' | Sort-Object Name)
$docs = @{}
foreach ($file in $docFiles) {
    $name = [IO.Path]::GetFileNameWithoutExtension($file.Name)
    if ($name -cnotin $commands.Name) { Add-Problem $file.Name 0 "$($module.Name) exports no cmdlet named $name (it exports $($commands.Name -join ', '))"; continue }
    $doc = Read-HelpDocument $file.FullName
    if ($doc.Name -and $doc.Name -cne $name) { Add-Problem $doc.File 1 "the title '# $($doc.Name)' must be the file's name, $name" }
    $docs[$name] = $doc
}
$helps = @{}
foreach ($command in $commands) {
    $doc = $docs[$command.Name]
    if (-not $doc) { Add-Problem (Join-Path ([IO.Path]::GetFileName($DocsPath.TrimEnd('/'))) "$($command.Name).md") 0 "missing: $($command.Name) is exported and has no help source (see docs/README.md for the schema)"; continue }
    $help = ConvertFrom-HelpDocument $doc
    Test-HelpAgainstCommand $doc $help $command
    $helps[$command.Name] = $help
}

$abouts = @(Get-ChildItem -LiteralPath $AboutPath -Filter 'about_*.help.txt' -File -ErrorAction Ignore)
foreach ($about in $abouts) {
    $text = Get-Content -Raw -LiteralPath $about.FullName
    $topic = $about.Name -replace '\.help\.txt$', ''
    foreach ($heading in 'TOPIC', 'SHORT DESCRIPTION', 'LONG DESCRIPTION') {
        if ($text -cnotmatch "(?m)^$heading\s*$") { Add-Problem $about.Name 0 "no '$heading' heading" }
    }
    if ($text -notmatch "(?m)^\s+$topic\s*$") { Add-Problem $about.Name 0 "the TOPIC must name $topic" }
    $number = 0
    foreach ($line in $text -split '\r?\n') {
        $number++
        if ($line.Length -gt 80) { Write-Warning "$($about.Name):${number}: $($line.Length) characters; about topics keep to 80" }
    }
}

if ($script:Problems.Count -gt 0) {
    $message = "Help for $($module.Name) cannot be built; fix these in $DocsPath (schema: docs/README.md):" + [Environment]::NewLine +
    (($script:Problems | ForEach-Object { "  - $_" }) -join [Environment]::NewLine)
    $Host.UI.WriteErrorLine($message)
    exit 1
}

foreach ($command in $commands) {
    $doc = $docs[$command.Name]
    $syntax = Get-SyntaxMarkdown $command
    $section = $doc.Sections.SYNTAX
    $current = @($section.Lines | ForEach-Object Text)
    $trim = { param($lines) (($lines -join "`n").Trim()) }
    if ((& $trim $current) -ceq (& $trim $syntax)) { continue }
    if ($UpdateMarkdown) {
        $before = $doc.Lines[0..($section.Line - 1)]
        $next = $section.Line + $section.Lines.Count # index of the next section's heading
        $after = if ($next -lt $doc.Lines.Count) { $doc.Lines[$next..($doc.Lines.Count - 1)] } else { @() }
        $updated = @($before) + '' + @($syntax) + @($after)
        [IO.File]::WriteAllText($doc.Path, (($updated -join "`n").TrimEnd() + "`n"))
        Write-Host "Updated the SYNTAX section of $($doc.File)"
    }
    else { Write-Warning "$($doc.File): the SYNTAX section is out of date; run build/ConvertTo-MamlHelp.ps1 -UpdateMarkdown in a new pwsh after building" }
}

New-Item -ItemType Directory -Force $OutputPath | Out-Null
$target = Join-Path $OutputPath $helpFile
$settings = [System.Xml.XmlWriterSettings]@{ Indent = $true; Encoding = [System.Text.UTF8Encoding]::new($false); NewLineChars = "`n" }
$script:Writer = [System.Xml.XmlWriter]::Create($target, $settings)
try {
    $script:Writer.WriteStartDocument()
    $script:Writer.WriteStartElement('helpItems', 'http://msh')
    $script:Writer.WriteAttributeString('schema', 'maml')
    foreach ($command in $commands) { Write-CommandHelp $helps[$command.Name] $command }
    $script:Writer.WriteEndElement()
    $script:Writer.WriteEndDocument()
}
finally {
    $script:Writer.Dispose()
}
[xml](Get-Content -Raw -LiteralPath $target) | Out-Null # well-formed, or this throws
foreach ($about in $abouts) { Copy-Item -LiteralPath $about.FullName -Destination $OutputPath }
Write-Host "Help: $helpFile for $($commands.Count) cmdlets, $($abouts.Count) about topic(s) in $OutputPath"
