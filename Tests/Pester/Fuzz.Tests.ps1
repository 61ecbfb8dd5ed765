# Image fuzzing: seeded mutations of real checkpoints (of the self-checking selfcheck target, and a quarter of them of
# the tree target's 10 processes), each read by Get-CheckpointImage and a sample of selfcheck's restored by
# Restore-Process. Every answer must be a success or a documented error id naming a file of the image (or the
# process), within a time bound; never UnexpectedError. A restore either fails with a documented id and leaves no
# process behind, or gives a process that verifies itself (and is killed); damaged bytes never restore (the digests
# find them), and a value edited on purpose may reach the process as edited, which the target then reports (counted
# apart).
# Kinds (Tests/Pester/ImageMutations.psm1): byte flips, truncation, appended junk, zeroed ranges and swapped files (the
# digests find them before a restore), and value-level edits, repeated and removed entries through
# Import-CheckpointImageFile / Export-CheckpointImageFile, with the digest recorded again or the digests removed (as
# CRIU's images come): what the restore's own checks of values must find.
# Replay: CRIUPS_FUZZ_SEED=<seed> (and CRIUPS_FUZZ_CASE=<case> for one case) with the seed a run printed;
# CRIUPS_FUZZ_CASES sets how many cases (2,000 by default). The suite runs one fixed seed, so that CI says the same of
# the same code; CRIUPS_FUZZ_SEED=random explores new ones (each failure found that way is fixed, then kept as a case).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'ImageMutations.psm1') -Force
    Import-CriuPS

    $script:Seed = switch ($env:CRIUPS_FUZZ_SEED) {
        { -not $_ } { 424242 }
        'random' { [System.Random]::Shared.Next() }
        default { [int]$_ }
    }
    $script:CaseCount = if ($env:CRIUPS_FUZZ_CASES) { [int]$env:CRIUPS_FUZZ_CASES } else { 2000 }
    $script:Cases = if ($env:CRIUPS_FUZZ_CASE) { @([int]$env:CRIUPS_FUZZ_CASE) } else { 0..($CaseCount - 1) }
    # About 50 of 2,000 cases are restored too (those of selfcheck's image); 31 is prime to the number of kinds, so each
    # kind has its share.
    $script:RestoreEvery = 31
    $script:Kinds = @(Get-MutationKinds)
    # Bounds well above what a case takes here (milliseconds to read, under a second to restore), on a busy machine.
    $script:ReadTimeout = [TimeSpan]::FromSeconds(20)
    $script:RestoreTimeout = [TimeSpan]::FromSeconds(60)
    Write-Host "Image fuzzing: seed $Seed, $($Cases.Count) case(s); replay with CRIUPS_FUZZ_SEED=$Seed [CRIUPS_FUZZ_CASE=<case>]"

    $work = Join-Path $TestDrive 'selfcheck'
    $script:Log = Join-Path $work 'selfcheck.log'
    $script:Target = Start-TestTarget -Program (Get-TestTarget 'selfcheck') -Arguments 'sleep', $work -WorkDirectory $work
    $original = Join-Path $TestDrive 'original'
    Checkpoint-Process -Id $Target -ImagePath $original | Out-Null
    Wait-Until { -not (Test-ProcessAlive $Target) } 'the checkpointed process to end'
    $script:SelfCheckImage = New-WorkingImage $original (Join-Path $TestDrive 'mutated') | Add-Member -PassThru Root $Target
    # A tree of 10 processes (sessions, groups, a zombie, a stopped process, pipes and a socketpair between them) for
    # the checks across processes; its mutations are read only, every fourth round of the kinds.
    $treeWork = Join-Path $TestDrive 'tree'
    $treeRoot = Start-TestTarget -Program (Get-TestTarget 'tree') -Arguments $treeWork -WorkDirectory $treeWork
    Wait-Until { (Get-ProcessTreeLayout $treeRoot).Count -eq 10 } 'the tree to be set up'
    Checkpoint-Process -Id $treeRoot -ImagePath (Join-Path $TestDrive 'tree-original') | Out-Null
    Wait-Until { -not (Test-ProcessAlive $treeRoot) } 'the checkpointed tree to end'
    $script:TreeImage = New-WorkingImage (Join-Path $TestDrive 'tree-original') (Join-Path $TestDrive 'tree-mutated') | Add-Member -PassThru Root $treeRoot
    $script:Working = $SelfCheckImage

    # Every error id the module documents: the kinds of CheckpointException (README, about_CriuPS).
    $script:DocumentedIds = [Enum]::GetNames([CriuPS.Engine.Errors.CheckpointErrorKind])

    # The cmdlets run in a runspace of their own, so that a case that hangs is stopped after its bound and named.
    $script:Runner = [powershell]::Create()
    [void]$Runner.AddCommand('Import-Module').AddParameter('Name', (Join-Path (Get-RepositoryRoot) 'out/CriuPS/CriuPS.psd1')).Invoke()

    # Runs a cmdlet on the mutated image within a time bound: its output, the ids of its errors, and whether it hung.
    function Invoke-Bounded([string]$Command, [TimeSpan]$Timeout) {
        $Runner.Commands.Clear()
        $Runner.Streams.ClearStreams()
        $parameter = if ($Command -eq 'Get-CheckpointImage') { 'LiteralPath' } else { 'ImagePath' }
        [void]$Runner.AddCommand($Command).AddParameter($parameter, $Working.Path)
        $clock = [Diagnostics.Stopwatch]::StartNew()
        $async = $Runner.BeginInvoke()
        if (-not $async.AsyncWaitHandle.WaitOne($Timeout)) {
            $Runner.Stop()
            return [pscustomobject]@{ Hung = $true; Output = @(); Errors = @(); Elapsed = $clock.Elapsed }
        }
        $errors = [System.Collections.Generic.List[System.Management.Automation.ErrorRecord]]::new()
        $output = @()
        try { $output = @($Runner.EndInvoke($async)) }
        catch { $errors.Add($(if ($_.Exception.InnerException.ErrorRecord) { $_.Exception.InnerException.ErrorRecord } else { $_ })) }
        foreach ($record in $Runner.Streams.Error) { $errors.Add($record) }
        [pscustomobject]@{ Hung = $false; Output = $output; Errors = @($errors); Elapsed = $clock.Elapsed }
    }

    # What is wrong with the errors of an answer: an undocumented id, an error about the image that names no file of it,
    # or another that names neither a file nor the process.
    function Get-ErrorProblem($Answer) {
        foreach ($record in $Answer.Errors) {
            $id = $record.FullyQualifiedErrorId.Split(',')[0]
            $message = $record.Exception.Message
            if ($id -notin $DocumentedIds) { return "$id`: $($record.Exception.GetType().FullName): $message" }
            $namesFile = $message -match [regex]::Escape($Working.Path)
            if ($id -in 'ImageCorrupt', 'ImageIncompatible', 'InvalidImageData', 'ImageNotFound' -and -not $namesFile) { return "$id names no file of the image: $message" }
            if (-not $namesFile -and $message -notmatch "\b$($Working.Root)\b") { return "$id names neither a file of the image nor process $($Working.Root): $message" }
        }
        $null
    }

    # Mutates the working image as case CASE of the seed; returns the mutation, or $null when no edit could be made.
    function New-Mutation([int]$Case) {
        $random = New-CaseRandom $Seed $Case
        $kind = $Kinds[$Case % $Kinds.Count]
        if (Test-ByteKind $kind) { return Invoke-ByteMutation $random $Working $kind }
        Invoke-ValueMutation $random $Working $kind $Refusals
    }

    $script:Refusals = [System.Collections.Generic.List[string]]::new()
    $script:Findings = [System.Collections.Generic.List[string]]::new()
    # Outcome counts by kind: "succeeded", "restored, verified itself" or an error id.
    $script:Outcomes = [ordered]@{}
    function Add-Outcome([string]$Kind, [string]$Outcome) {
        $key = "$Kind`t$Outcome"
        $Outcomes[$key] = 1 + [int]$Outcomes[$key]
    }

    # Restores the mutated image: a documented id and nothing left of the image's process, or a process that
    # verifies itself; returns what went wrong, or $null.
    function Test-MutatedRestore($Mutation, [string]$Name) {
        $answer = Invoke-Bounded 'Restore-Process' $RestoreTimeout
        try {
            if ($answer.Hung) { return "Restore-Process did not answer within $($RestoreTimeout.TotalSeconds) s" }
            if ($problem = Get-ErrorProblem $answer) { return "Restore-Process: $problem" }
            # Bytes changed behind CriuPS's back are found by the digests, whatever they hit.
            if ((Test-ByteKind $Mutation.Kind) -and $answer.Errors[0].FullyQualifiedErrorId -notlike 'ImageCorrupt,*') {
                return "Restore-Process did not find the damage by the digests: $(if ($answer.Errors.Count) { $answer.Errors[0].FullyQualifiedErrorId } else { 'it restored' })"
            }
            if ($answer.Errors.Count -gt 0) {
                Add-Outcome "$($Mutation.Kind) (restored)" $answer.Errors[0].FullyQualifiedErrorId.Split(',')[0]
                if (Test-Path "/proc/$Target") { return "a failed restore left process ${Target}: $(Get-Content "/proc/$Target/stat" -Raw -ErrorAction Ignore)" }
                return $null
            }
            $restored = $answer.Output[0]
            Register-TestProcess $restored.Id
            $check = try { Invoke-SelfCheck $Target $Log -TimeoutSeconds 10 } catch { "no answer: $_" }
            if ($check -match "^OK counter=\d+ pid=$Target$") {
                Add-Outcome "$($Mutation.Kind) (restored)" 'restored, verified itself'
                return $null
            }
            # An edit made through Export-CheckpointImageFile is deliberate (its digest is recorded again) or made to an
            # image without digests, and some reach the process as made: one descriptor or pending signal fewer, another
            # limit. The target then reports what differs; that is the edit, not the restore, as long as the process is
            # there to say so. Damage to bytes never restores (above).
            if ($check -match "^CORRUPT (\S+) pid=$Target$") {
                Add-Outcome "$($Mutation.Kind) (restored)" "restored as edited (the target reports $($Matches[1]))"
                return $null
            }
            "the restored process fails its own check: $check"
        }
        finally {
            # The image's process, if a failed restore left it (found above), goes too, or every later case would find
            # its PID taken. No restore host is left behind either.
            Stop-TestProcesses -Also $Target
            if ($hosts = Get-RestoreHosts) { $Findings.Add("${Name}: restore hosts left: $($hosts -join ', ')") }
        }
    }
}

AfterAll {
    if ($Runner) { $Runner.Dispose() }
    Stop-TestProcesses
}

Describe 'Seeded image fuzzing' {
    It 'answers every mutation with a documented id or an image, in time, and restores a sample safely' {
        $clock = [Diagnostics.Stopwatch]::StartNew()
        $slowest = [TimeSpan]::Zero
        foreach ($case in $Cases) {
            $mutation = $null
            $script:Working = if ([Math]::Floor($case / $Kinds.Count) % 4 -eq 3) { $TreeImage } else { $SelfCheckImage }
            $label = if ($Working -eq $TreeImage) { ' [tree]' } else { '' }
            try {
                $mutation = New-Mutation $case
                if ($null -eq $mutation) { Add-Outcome "$($Kinds[$case % $Kinds.Count])$label" 'no edit Export accepted'; continue }
                $name = "seed $Seed case $case ($($mutation.Kind)$label`: $($mutation.Description))"

                $answer = Invoke-Bounded 'Get-CheckpointImage' $ReadTimeout
                if ($answer.Elapsed -gt $slowest) { $slowest = $answer.Elapsed }
                if ($answer.Hung) { $Findings.Add("$name`: Get-CheckpointImage did not answer within $($ReadTimeout.TotalSeconds) s"); continue }
                if ($problem = Get-ErrorProblem $answer) { $Findings.Add("$name`: Get-CheckpointImage: $problem"); continue }
                Add-Outcome "$($mutation.Kind)$label" $(if ($answer.Errors.Count -gt 0) { $answer.Errors[0].FullyQualifiedErrorId.Split(',')[0] } else { 'succeeded' })

                if (($case % $RestoreEvery -eq 0 -or $env:CRIUPS_FUZZ_CASE) -and $Working -eq $SelfCheckImage) {
                    if ($problem = Test-MutatedRestore $mutation $name) { $Findings.Add("$name`: $problem") }
                }
            }
            catch {
                $Findings.Add("seed $Seed case $case ($(if ($mutation) { "$($mutation.Kind): $($mutation.Description)" } else { 'making the mutation' })): $_")
            }
            finally {
                Reset-WorkingImage $Working $(if ($mutation) { $mutation.Touched } else { $Working.Files })
            }
        }

        $table = foreach ($key in $Outcomes.Keys) {
            $kind, $outcome = $key.Split("`t")
            [pscustomobject]@{ Kind = $kind; Outcome = $outcome; Count = $Outcomes[$key] }
        }
        Write-Host ($table | Sort-Object Kind, Outcome | Format-Table -AutoSize | Out-String -Width 240).TrimEnd()
        Write-Host ("Image fuzzing: seed $Seed, $($Cases.Count) case(s) in {0:N1} s (slowest read {1:N0} ms); {2} edits refused by Export-CheckpointImageFile" -f
            $clock.Elapsed.TotalSeconds, $slowest.TotalMilliseconds, $Refusals.Count)

        foreach ($finding in $Findings) { Write-Host "FINDING: $finding" }
        $Findings | Should -BeNullOrEmpty -Because "every case answers with a documented id or an image (seed $Seed)"
        if (-not $env:CRIUPS_FUZZ_CASE) {
            @($table | Where-Object { $_.Kind -notlike '*(restored)' } | Measure-Object Count -Sum).Sum | Should -BeGreaterOrEqual ([Math]::Min(2000, $CaseCount) * 0.95) -Because 'nearly every case changes the image'
            @($table | Where-Object { $_.Kind -like '*(restored)' -and $_.Outcome -eq 'restored, verified itself' }).Count | Should -BeGreaterThan 0 -Because 'some mutations leave a restorable image'
        }
    }
}
