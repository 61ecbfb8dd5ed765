#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Packs the built module into a .nupkg that Install-PSResource and Install-Module can install.
.DESCRIPTION
    Checks the manifest of the built module (ModulePath, normally out/CriuPS) and packs the folder with
    Compress-PSResource (Microsoft.PowerShell.PSResourceGet, shipped with PowerShell 7.4 and later) into
    OutputPath/CriuPS.<version>.nupkg, replacing an older package of the same version. Outputs the package file.
.EXAMPLE
    ./build/New-ModulePackage.ps1 -ModulePath ./out/CriuPS -OutputPath ./out/packages
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$ModulePath,
    [Parameter(Mandatory)][string]$OutputPath
)

$ErrorActionPreference = 'Stop'
$manifestPath = Join-Path $ModulePath 'CriuPS.psd1'
$manifest = Test-ModuleManifest $manifestPath
foreach ($field in 'Author', 'Description', 'ProjectUri', 'LicenseUri') {
    $value = if ($field -in 'ProjectUri', 'LicenseUri') { $manifest.PrivateData.PSData[$field] } else { $manifest.$field }
    if (-not $value) { throw "$manifestPath has no $field; the gallery needs it" }
}
New-Item -ItemType Directory -Force $OutputPath | Out-Null
$package = Join-Path $OutputPath "CriuPS.$($manifest.Version).nupkg"
Remove-Item $package -ErrorAction Ignore
Compress-PSResource -Path $ModulePath -DestinationPath $OutputPath
if (-not (Test-Path $package)) { throw "Compress-PSResource did not write $package" }
Get-Item $package
