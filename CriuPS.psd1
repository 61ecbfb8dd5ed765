@{
    RootModule           = 'CriuPS.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '2fd25e39-d275-48e9-8f0e-9f6ba1e20865'
    Author               = 'The CriuPS developers'
    CompanyName          = 'CriuPS'
    Copyright            = '(c) The CriuPS developers. MIT License.'
    Description          = 'Checkpoint and restore of live Linux processes (like CRIU), natively in .NET: save a running process to an image directory in CRIU''s format and bring it back later, with the same PID, memory, open files, signal handlers and timers.'
    PowerShellVersion    = '7.6' # the first PowerShell on .NET 10, which the assemblies are built for
    CompatiblePSEditions = @('Core')
    CmdletsToExport      = @('Checkpoint-Process', 'Restore-Process', 'Get-CheckpointImage', 'Test-CheckpointSupport', 'Import-CheckpointImageFile', 'Export-CheckpointImageFile', 'Test-CheckpointImage',
        'Start-LazyPageServer', 'Stop-LazyPageServer', 'Get-LazyPageServer', 'Wait-LazyRestore', 'Move-Process')
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    FormatsToProcess     = @('CriuPS.Format.ps1xml')
    TypesToProcess       = @('CriuPS.Types.ps1xml')
    PrivateData          = @{
        PSData = @{
            Tags         = @('Linux', 'CRIU', 'Checkpoint', 'Restore', 'Migration', 'Process', 'ptrace')
            ProjectUri   = 'https://github.com/criups/criups'
            LicenseUri   = 'https://github.com/criups/criups/blob/main/LICENSE'
            ReleaseNotes = 'First version: checkpoint and restore of process trees; Test-CheckpointSupport; verified images (the digests of every image file in criups-digests.img, checked before a restore; Test-CheckpointImage); image inspection with crit''s views and JSON (Import-/Export-CheckpointImageFile); live migration: checkpoints streamed to a page server (optional TLS) and lazy restores whose memory arrives on fault (Start-/Stop-/Get-LazyPageServer, Wait-LazyRestore).'
        }
    }
}
