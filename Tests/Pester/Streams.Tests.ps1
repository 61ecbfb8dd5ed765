# Progress and verbose output of Checkpoint-Process and Restore-Process: phases with percentages, a completed record
# at the end, silence under $ProgressPreference = 'SilentlyContinue', and every phase with its duration in -Verbose.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Module = Join-Path (Get-RepositoryRoot) 'out/CriuPS/CriuPS.psd1'
    $script:CheckpointPhases = 'Checking the process', 'Freezing', 'Saving process state', 'Saving memory', 'Writing images', 'Killing the processes', 'Done'
    $script:RestorePhases = 'Reading images', 'Creating the processes', 'Restoring memory', 'Restoring files', 'Restoring process state', 'Resuming', 'Done'

    # Runs SCRIPT in a runspace of its own (with CriuPS imported), as a host would, and returns the PowerShell
    # instance: its Streams hold the progress, verbose and error records the cmdlets wrote.
    function Invoke-Isolated([string]$Script, [hashtable]$Parameters) {
        $ps = [powershell]::Create()
        $null = $ps.AddScript("param(`$Module, `$Id, `$Path, `$Quiet) Import-Module `$Module; if (`$Quiet) { `$ProgressPreference = 'SilentlyContinue' }; $Script")
        $null = $ps.AddParameters(@{ Module = $Module } + $Parameters)
        $output = $ps.Invoke()
        [pscustomobject]@{ Output = $output; Streams = $ps.Streams }
        $ps.Dispose()
    }

    function Start-SelfCheck([string]$Name) {
        $work = Join-Path $TestDrive $Name
        Start-TestTarget -Program (Get-TestTarget 'selfcheck') -Arguments 'sleep', $work -WorkDirectory $work
    }

    # Checks the progress records of one run: every phase named in order, some percentages, and a completed record last.
    function Assert-Progress($Records, [string[]]$Phases, [string]$Activity) {
        $Records.Count | Should -BeGreaterThan $Phases.Count
        $Records | ForEach-Object { $_.Activity | Should -Be $Activity }
        $named = @($Records | Where-Object { $_.RecordType -eq 'Processing' -and $_.StatusDescription -in $Phases } | ForEach-Object StatusDescription)
        $named | Should -Be $Phases
        $measured = @($Records | Where-Object { $_.PercentComplete -ge 0 })
        $measured.Count | Should -BeGreaterThan 0 -Because 'copying memory reports how far it got'
        $measured | ForEach-Object { $_.PercentComplete | Should -BeLessOrEqual 100 }
        $measured[-1].PercentComplete | Should -Be 100
        $measured[0].StatusDescription | Should -Match '^(Saving|Restoring) memory: .+ of '
        $Records[-1].RecordType | Should -Be 'Completed'
        @($Records | Where-Object RecordType -EQ 'Completed').Count | Should -Be 1
    }
}

AfterAll { Stop-TestProcesses }

Describe 'Progress of Checkpoint-Process and Restore-Process' {
    AfterEach { Stop-TestProcesses }

    It 'reports each phase, percentages while copying memory, and completes at the end' {
        $target = Start-SelfCheck 'progress'
        $image = Join-Path $TestDrive 'progress-image'
        $dump = Invoke-Isolated 'Checkpoint-Process -Id $Id -ImagePath $Path' @{ Id = $target; Path = $image }
        $dump.Streams.Error | Should -BeNullOrEmpty
        Assert-Progress $dump.Streams.Progress $CheckpointPhases "Checkpoint of selfcheck ($target)"

        $restore = Invoke-Isolated 'Restore-Process -ImagePath $Path' @{ Path = $image }
        $restore.Streams.Error | Should -BeNullOrEmpty
        Register-TestProcess $restore.Output[0].Id
        Assert-Progress $restore.Streams.Progress $RestorePhases "Restore from $image"
    }

    It 'is silent when $ProgressPreference is SilentlyContinue' {
        $target = Start-SelfCheck 'silent'
        $image = Join-Path $TestDrive 'silent-image'
        $dump = Invoke-Isolated 'Checkpoint-Process -Id $Id -ImagePath $Path' @{ Id = $target; Path = $image; Quiet = $true }
        $dump.Output.Count | Should -Be 1
        $dump.Streams.Progress | Should -BeNullOrEmpty
        $restore = Invoke-Isolated 'Restore-Process -ImagePath $Path' @{ Path = $image; Quiet = $true }
        Register-TestProcess $restore.Output[0].Id
        $restore.Output[0].Id | Should -Be $target
        $restore.Streams.Progress | Should -BeNullOrEmpty
    }
}

Describe '-Verbose' {
    BeforeAll {
        # Every phase, and a line with its duration: "  Freezing: done in 1.2 ms", with what the JIT compiled and the
        # garbage collections meanwhile.
        function Assert-PhasesTimed($Messages, [string[]]$Phases) {
            foreach ($phase in $Phases) {
                $Messages | Should -Contain $phase
                $Messages | Where-Object { $_ -match "^\s*$([regex]::Escape($phase)): done in \d+(\.\d+)? ms( \(the runtime compiled \d+ methods for \d+(\.\d+)? ms of it\))?( \((no|\d+) garbage collections?, \d+ MiB allocated\))?$" } | Should -Not -BeNullOrEmpty -Because "the duration of '$phase'"
            }
        }
    }

    AfterEach { Stop-TestProcesses }

    It 'names each phase of Checkpoint-Process and Restore-Process with its duration' {
        $target = Start-SelfCheck 'verbose'
        $image = Join-Path $TestDrive 'verbose-image'
        $dump = Invoke-Isolated 'Checkpoint-Process -Id $Id -ImagePath $Path -Verbose' @{ Id = $target; Path = $image }
        $dump.Streams.Error | Should -BeNullOrEmpty
        Assert-PhasesTimed @($dump.Streams.Verbose.Message) $CheckpointPhases

        $restore = Invoke-Isolated 'Restore-Process -ImagePath $Path -Verbose' @{ Path = $image }
        $restore.Streams.Error | Should -BeNullOrEmpty
        Register-TestProcess $restore.Output[0].Id
        Assert-PhasesTimed @($restore.Streams.Verbose.Message) $RestorePhases
    }

    It 'says nothing without -Verbose' {
        $target = Start-SelfCheck 'quiet'
        $dump = Invoke-Isolated 'Checkpoint-Process -Id $Id -ImagePath $Path' @{ Id = $target; Path = (Join-Path $TestDrive 'quiet-image') }
        $dump.Output.Count | Should -Be 1
        $dump.Streams.Verbose | Should -BeNullOrEmpty
    }
}
