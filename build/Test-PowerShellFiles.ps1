#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Checks the PowerShell files under a folder with the parser's AST; outputs one object per problem.
.DESCRIPTION
    Looks at every *.ps1, *.psm1, *.psd1 and *.ps1xml file under Path, except in generated, restored and built
    folders (out, bin, obj, .git, Tests/Targets/build), and reports, as objects with File (relative to Path),
    Line, Rule and Message:
      ParseError        a file that does not parse; a *.ps1xml that is not well-formed XML
      Alias             a command called by an alias (%, ?, gci, select...): write the command's name
      WriteHostInModule Write-Host in a module (*.psm1): write objects, Write-Verbose or Write-Warning instead
      NullOnRight       $x -eq $null (or -ne): with an array on the left it filters instead of comparing
    Nothing is output when every file passes. build.ps1 runs it before each build and fails on any problem.
.EXAMPLE
    ./build/Test-PowerShellFiles.ps1 -Path . | Format-Table
#>
[CmdletBinding()]
param([Parameter(Mandatory)][string]$Path)

$ErrorActionPreference = 'Stop'
$root = (Resolve-Path $Path).Path
$skip = '^(out|bin|obj|\.git|Tests[\\/]Targets[\\/]build)[\\/]|[\\/](bin|obj)[\\/]'
$aliases = @{}
Get-Alias | ForEach-Object { $aliases[$_.Name] = $_.Definition }

function New-Problem([string]$File, [int]$Line, [string]$Rule, [string]$Message) {
    [pscustomobject]@{ File = $File; Line = $Line; Rule = $Rule; Message = $Message }
}

$files = Get-ChildItem $root -Recurse -File -Include '*.ps1', '*.psm1', '*.psd1', '*.ps1xml' |
    Where-Object { [IO.Path]::GetRelativePath($root, $_.FullName) -notmatch $skip } | Sort-Object FullName
foreach ($file in $files) {
    $relative = [IO.Path]::GetRelativePath($root, $file.FullName)
    if ($file.Extension -eq '.ps1xml') {
        try { [System.Xml.XmlDocument]::new().Load($file.FullName) }
        catch [System.Xml.XmlException] { New-Problem $relative $_.Exception.LineNumber 'ParseError' $_.Exception.Message }
        continue
    }
    $tokens = $null
    $errors = $null
    $ast = [System.Management.Automation.Language.Parser]::ParseFile($file.FullName, [ref]$tokens, [ref]$errors)
    foreach ($parseError in $errors) {
        New-Problem $relative $parseError.Extent.StartLineNumber 'ParseError' $parseError.Message
    }
    foreach ($command in $ast.FindAll({ param($node) $node -is [System.Management.Automation.Language.CommandAst] }, $true)) {
        $name = $command.GetCommandName()
        $line = $command.Extent.StartLineNumber
        # "& kill" runs the native program on purpose; only bare names are resolved as aliases.
        if ($command.InvocationOperator -eq 'Unknown' -and $name -and $aliases.ContainsKey($name)) {
            New-Problem $relative $line 'Alias' "'$name' is an alias; write $($aliases[$name])"
        }
        if ($file.Extension -eq '.psm1' -and $name -eq 'Write-Host') {
            New-Problem $relative $line 'WriteHostInModule' 'write objects, Write-Verbose or Write-Warning instead'
        }
    }
    $comparisons = $ast.FindAll({ param($node)
            $node -is [System.Management.Automation.Language.BinaryExpressionAst] -and $node.Operator -in 'Ieq', 'Ine', 'Ceq', 'Cne' -and
            $node.Right -is [System.Management.Automation.Language.VariableExpressionAst] -and $node.Right.VariablePath.UserPath -eq 'null' }, $true)
    foreach ($comparison in $comparisons) {
        New-Problem $relative $comparison.Extent.StartLineNumber 'NullOnRight' "put `$null on the left: $($comparison.Extent.Text)"
    }
}
