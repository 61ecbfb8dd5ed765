# Restores that fail on purpose at each point of the restore pipeline (CRIUPS_FAIL_AT, test-only), on self-checking
# targets that exercise that point: Restore-Process reports RestoreFailed, nothing of the tree is left (every PID and
# TID of the image free again: no process, no zombie), no restore host, network lock, file lock or descriptor of this
# session stays behind, the target's directory holds the same names, the image is byte-for-byte as it was
# (restore.log aside, which every restore appends to), and the same image then restores and the target verifies itself.

BeforeDiscovery {
    # Each point with the targets that exercise it. Sockets are rebuilt by the engine before any process exists
    # (after-sockets); after-files fails once the processes hold them.
    $script:Cases = @(
        @{ Point = 'after-sockets'; Target = 'inetsockets' }
        @{ Point = 'after-sockets'; Target = 'unixsockets' }
        @{ Point = 'after-sockets'; Target = 'tcppair' }
        @{ Point = 'after-create'; Target = 'tree' }
        @{ Point = 'mid-memory'; Target = 'selfcheck' }
        @{ Point = 'after-memory'; Target = 'tree' }
        @{ Point = 'after-memory'; Target = 'sharedmem' }
        @{ Point = 'after-memory'; Target = 'lazymem' }
        @{ Point = 'after-files'; Target = 'specialfiles' }
        @{ Point = 'after-files'; Target = 'unixsockets' }
        @{ Point = 'after-credentials'; Target = 'identity' }
        # Every thread placed in its cgroups (the cgroups a failed restore made: Cgroups.Tests.ps1).
        @{ Point = 'after-cgroups'; Target = 'threads' }
        @{ Point = 'after-cgroups'; Target = 'tree' }
        @{ Point = 'before-resume'; Target = 'threads' }
        @{ Point = 'before-resume'; Target = 'tree' }
        @{ Point = 'before-resume'; Target = 'detached tree' }
        @{ Point = 'before-resume'; Target = 'tcppair' }
        @{ Point = 'before-resume'; Target = 'lazymem' }
    )
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Restore = 'CriuPS.Cmdlets.RestoreProcessCommand'
    $script:Python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source
    $script:StreamBytes = 3MB

    # Starts a target in $Work and returns how to restore and check it: its root, the switches Restore-Process needs,
    # whether it holds file locks, the log (in $Work) its verdict goes to and the pattern a good verdict matches.
    function Start-FaultTarget([string]$Name, [string]$Work) {
        $t = @{ Switches = @{}; HoldsLocks = $false; Log = $null }
        switch ($Name) {
            'selfcheck' { $t.Root = Start-TestTarget -Program (Get-TestTarget 'selfcheck') -Arguments 'sleep', $Work -WorkDirectory $Work; $t.Log = 'selfcheck.log'; $t.Verdict = "^OK counter=\d+ pid=$($t.Root)$" }
            'tree' { $t.Root = Start-TestTarget -Program (Get-TestTarget 'tree') -Arguments $Work -WorkDirectory $Work; $t.Log = 'tree.log'; $t.Verdict = "^OK processes=10 pid=$($t.Root)$" }
            # With -Detach the root is a child of init, which reaps what the failed restore killed.
            'detached tree' { $t = Start-FaultTarget 'tree' $Work; $t.Switches = @{ Detach = $true } }
            'threads' { $t.Root = Start-TestTarget -Program (Get-TestTarget 'threads') -Arguments $Work -WorkDirectory $Work; $t.Log = 'threads.log'; $t.Verdict = "^OK threads=16 pid=$($t.Root)$" }
            'identity' { $t.Root = Start-TestTarget -Program (Get-TestTarget 'identity') -Arguments $Work -WorkDirectory $Work; $t.Log = 'identity.log'; $t.Verdict = "^OK pid=$($t.Root)$" }
            'sharedmem' { $t.Root = Start-TestTarget -Program (Get-TestTarget 'sharedmem') -Arguments $Work -WorkDirectory $Work; $t.Log = 'sharedmem.log'; $t.Verdict = "^OK processes=3 pid=$($t.Root)$" }
            'specialfiles' { $t.Root = Start-TestTarget -Program (Get-TestTarget 'specialfiles') -Arguments $Work -WorkDirectory $Work; $t.Log = 'specialfiles.log'; $t.Verdict = "^OK pid=$($t.Root)$"; $t.HoldsLocks = $true }
            'unixsockets' { $t.Root = Start-TestTarget -Program (Get-TestTarget 'unixsockets') -Arguments $Work -WorkDirectory $Work; $t.Log = 'unixsockets.log'; $t.Verdict = "^OK processes=4 pid=$($t.Root)$" }
            'inetsockets' { $t.Root = Start-TestTarget -Program $Python -Arguments (Join-Path (Get-RepositoryRoot) 'Tests/Targets/inetsockets.py'), $Work -WorkDirectory $Work; $t.Log = 'inetsockets.log'; $t.Verdict = "^OK pid=$($t.Root)$" }
            'lazymem' {
                $t.Root = Start-TestTarget -Program (Get-TestTarget 'lazymem') -Arguments '64', (Join-Path $Work 'lazymem.log') -WorkDirectory $Work
                $t.Log = 'lazymem.log'; $t.Verdict = "^OK pid=$($t.Root)$"; $t.Switches = @{ LazyPages = $true }
            }
            'tcppair' {
                # Both ends of a connection in the tree, checkpointed with data in flight: the dump leaves the
                # network locked for the restore. The client stops reading meanwhile (WORK/hold) so that the stream
                # cannot end before the checkpoint.
                $t.Root = Start-TestTarget -Program $Python -Arguments (Join-Path (Get-RepositoryRoot) 'Tests/Targets/tcpstream.py'), 'pair', $Work, '127.0.0.1', $StreamBytes -WorkDirectory $Work
                Wait-Until { Test-Path (Join-Path $Work 'client-ready') } 'the client child to start'
                Register-TestProcess ([int](Get-Content (Join-Path $Work 'client-ready')))
                Wait-Until { (Test-Path (Join-Path $Work 'progress')) -and [long](Get-Content (Join-Path $Work 'progress') -Raw).Split(' ')[1] -gt 0 } 'the echo to flow'
                New-Item (Join-Path $Work 'hold') | Out-Null
                $t.Switches = @{ TcpEstablished = $true }; $t.Log = 'client.log'; $t.Verdict = "^OK sent=$StreamBytes received=$StreamBytes "
            }
        }
        $t
    }

    # The verdict of a target restored from its image: it checks itself (SIGUSR1), or lets its stream finish.
    function Get-Verdict([string]$Name, $Target, [string]$Work) {
        $log = Join-Path $Work $Target.Log
        switch ($Name) {
            'tcppair' {
                Remove-Item (Join-Path $Work 'hold')
                Wait-Until { (Test-Path $log) -and (Get-Content $log -Raw) -match "`n" } 'the client to finish the stream' -TimeoutSeconds 60
                (Get-Content $log -Raw).Trim()
            }
            'lazymem' { Invoke-SelfCheck $Target.Root $log -TimeoutSeconds 60 }
            default { Invoke-SelfCheck $Target.Root $log }
        }
    }

    # Every file of an image directory but restore.log, with its SHA-256: what a restore must leave as it was.
    function Get-ImageContent([string]$Path) {
        Get-ChildItem $Path -Recurse -File -Force | Where-Object Name -NE 'restore.log' | Sort-Object FullName |
            ForEach-Object { "$([IO.Path]::GetRelativePath($Path, $_.FullName)) $((Get-FileHash $_.FullName -Algorithm SHA256).Hash)" }
    }

    # The names in a directory and below it (ghost files a restore recreates, socket files it binds).
    function Get-Names([string]$Path) {
        Get-ChildItem $Path -Recurse -Force | ForEach-Object { [IO.Path]::GetRelativePath($Path, $_.FullName) } | Sort-Object
    }

    # Lines of /proc/locks held by one of the processes or on a file of the directory (matched by inode).
    function Get-HeldLocks([int[]]$Ids, [string]$Directory) {
        $inodes = @(& stat -c '%i' (Get-ChildItem $Directory -Recurse -File -Force).FullName)
        @(Get-Content /proc/locks | Where-Object {
            $fields = ($_ -replace '^\d+:\s*(->\s*)?', '') -split '\s+'
            [int]$fields[3] -in $Ids -or ($fields[4] -split ':')[-1] -in $inodes
        })
    }

    # The network lock of an image's checkpoint, if it is there: its table is named after the dump's run id (cut as CRIU cuts it).
    function Get-ImageLockTable([string]$Path) {
        $runId = (Import-CheckpointImageFile (Join-Path $Path 'inventory.img')).Entries[0].dump_criu_run_id
        $runId | Should -Not -BeNullOrEmpty
        $table = "CRIU-$runId"
        @(Get-LockTable | Where-Object { $_ -eq "table inet $($table.Substring(0, [Math]::Min($table.Length, 26)))" })
    }

    # This session's descriptors, as "number target" lines, but for what PowerShell opens on its own meanwhile: the
    # assemblies it loads (.NET keeps them open), the listing's own handle, and descriptors closed while listed.
    function Get-SessionDescriptors {
        Get-ChildItem "/proc/$PID/fd" | Where-Object { $_.LinkTarget -and $_.LinkTarget -notlike '*.dll' -and $_.LinkTarget -ne "/proc/$PID/fd" } |
            ForEach-Object { "$($_.Name) $($_.LinkTarget)" } | Sort-Object
    }

    # The descriptors this session holds now and did not hold before (given a moment for those closed asynchronously).
    function Get-NewDescriptors([string[]]$Before) {
        $deadline = [DateTime]::UtcNow.AddSeconds(2)
        do {
            $new = @(Get-SessionDescriptors | Where-Object { $_ -notin $Before })
            if ($new.Count -eq 0) { return }
            Start-Sleep -Milliseconds 100
        } while ([DateTime]::UtcNow -lt $deadline)
        $new
    }

    # This session's threads named after the lazy transfer.
    function Get-LazyThreads { @(Get-ChildItem "/proc/$PID/task" | Where-Object { (Get-Content "$($_.FullName)/comm" -ErrorAction Ignore) -eq 'criups-lazy' }) }
}

Describe 'A restore that fails at <Point> leaves nothing behind (<Target>)' -ForEach $Cases {
    AfterEach {
        $env:CRIUPS_FAIL_AT = $null
        Stop-TestProcesses
    }

    It 'kills what it created, frees every PID, keeps the image, and the image restores afterwards' {
        $work = Join-Path $TestDrive "$Point-$($Target -replace ' ', '-')"
        $t = Start-FaultTarget $Target $work
        if ($t.HoldsLocks) {
            $running = @(Get-ProcessTreeLayout $t.Root | ForEach-Object { [int]$_.Split(' ')[0] })
            Get-HeldLocks $running $work | Should -Not -BeNullOrEmpty -Because 'the check below sees the locks the target takes'
        }
        $image = Checkpoint-Process -Id $t.Root -ImagePath (Join-Path $TestDrive "image-$Point-$($Target -replace ' ', '-')") -TcpEstablished:($Target -eq 'tcppair') -ErrorAction Stop
        $ids = @($image.Processes | ForEach-Object { $_.Id; $_.Threads.Id } | Sort-Object -Unique)
        foreach ($id in $ids) { Wait-Until { -not (Test-Path "/proc/$id") } "PID $id of the checkpointed tree to be free" }
        (Get-ImageLockTable $image.Path).Count | Should -Be ([int]($Target -eq 'tcppair')) -Because 'the dump leaves the network locked until its connections are restored'
        $content = Get-ImageContent $image.Path
        $names = Get-Names $work
        $hosts = Get-RestoreHosts
        $descriptors = Get-SessionDescriptors

        $env:CRIUPS_FAIL_AT = $Point
        $switches = $t.Switches
        Restore-Process $image.Path @switches -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $env:CRIUPS_FAIL_AT = $null
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be "RestoreFailed,$Restore"
        $errors[0].Exception.Message | Should -Be "Restore of process $($t.Root) failed: injected test failure at '$Point'. Nothing was left running."
        $errors[0].TargetObject | Should -Be $t.Root

        foreach ($id in $ids) {
            Wait-Until { -not (Test-Path "/proc/$id") } "PID $id to be free again (no process, no zombie)"
        }
        Wait-Until { (Get-LazyThreads).Count -eq 0 } 'the lazy transfer to end'
        # First, before anything here starts a program (PowerShell closes the pipes of one a moment after it ends).
        Get-NewDescriptors $descriptors | Should -BeNullOrEmpty -Because 'the engine closed every file, socket, pidfd and userfaultfd it opened'
        Get-RestoreHosts | Should -Be $hosts -Because 'the host process is gone'
        Get-ImageLockTable $image.Path | Should -BeNullOrEmpty -Because 'a failed restore removes the network lock'
        Get-HeldLocks $ids $work | Should -BeNullOrEmpty -Because 'no file lock outlives the restore, not even one the engine took on its own copy'
        Get-Names $work | Should -Be $names -Because 'no ghost file or socket name is left behind'
        Get-ImageContent $image.Path | Should -Be $content -Because 'a restore writes nothing into the image but restore.log'
        Join-Path $image.Path 'restore.log' | Should -FileContentMatch ([regex]::Escape("injected test failure at '$Point'"))

        $restored = Restore-Process $image.Path @switches -ErrorAction Stop
        $ids | Where-Object { Test-Path "/proc/$_" } | ForEach-Object { Register-TestProcess $_ }
        $restored.Id | Should -Be $t.Root
        if ($switches.LazyPages) {
            ($restored | Wait-LazyRestore -Timeout 120).State | Should -Be 'Completed'
        }
        Get-Verdict $Target $t $work | Should -Match $t.Verdict
        Get-ImageLockTable $image.Path | Should -BeNullOrEmpty
    }
}

Describe 'Restore failure points' {
    It 'tests every point a restore passes' -ForEach @(@{ Tested = $Cases.Point }) {
        $points = Get-FailurePoints 'Restore'
        $points.Count | Should -Be 8
        $Tested | Select-Object -Unique | Should -Be $points -Because 'each point is tested, in the order a restore passes them'
    }
}

Describe 'A restore whose criups-engine is killed' {
    AfterEach { Stop-TestProcesses }

    It 'leaves nothing half-alive: the root, the PowerShell''s child, killed and reaped by it, the host gone, and the image restores again' {
        $work = Join-Path $TestDrive 'engine-killed'
        $log = Join-Path $work 'memhog.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'memhog') -Arguments '512', $log -WorkDirectory $work
        $image = Join-Path $TestDrive 'engine-killed-image'
        Checkpoint-Process -Id $target -ImagePath $image -ErrorAction Stop | Out-Null
        Wait-Until { -not (Test-Path "/proc/$target") } 'the checkpointed process to be gone'
        $errors = Join-Path $TestDrive 'engine-killed.err'
        # The PowerShell outlives its failed restore, so that what reaps the root is the session and not init.
        $command = "Import-Module '$((Get-Module CriuPS).Path)'; try { Restore-Process -ImagePath '$image' -ErrorAction Stop | Out-Null } " +
            "catch { [Console]::Error.WriteLine(`$_.Exception.Message) }; Start-Sleep 120"
        $process = Start-Process (Join-Path $PSHOME 'pwsh') -ArgumentList '-NoProfile', '-NonInteractive', '-Command', $command -PassThru `
            -RedirectStandardOutput '/dev/null' -RedirectStandardError $errors
        try {
            # Killed once the root exists, traced, while the engine fills its 512 MiB (a few tenths of a second).
            $traced = { (Get-Content "/proc/$target/status" -ErrorAction Ignore) -match '^TracerPid:\s+[1-9]' }
            Wait-Until { & $traced } 'the root to be made and seized' 30
            $engine = [int](((& $traced) -split '\s+')[1])
            Get-Content "/proc/$engine/comm" | Should -Be 'criups-engine'
            & kill -s KILL $engine
            Wait-Until { Get-Content $errors -Raw -ErrorAction Ignore } 'the restore to fail'
            Get-Content $errors -Raw | Should -Match "^criups-engine \(PID $engine\), which ran the restore, was killed by signal 9 before it finished; nothing it made was left running\."
            Wait-Until { -not (Test-Path "/proc/$target") } 'the root to be gone: killed with its tracer, and reaped by its PowerShell (no zombie)' 10
            Get-ChildProcesses 'sleep' $process.Id | Should -BeNullOrEmpty -Because 'the host is killed and reaped'
            $process.HasExited | Should -BeFalse -Because 'the PowerShell that reaped them still runs'
        }
        finally {
            $process.Kill()
            $process.WaitForExit()
        }
        $restored = Restore-Process -ImagePath $image -ErrorAction Stop
        Register-TestProcess $restored.Id
        $restored.Id | Should -Be $target
        Send-Signal $target USR1
        Wait-Until { (Test-Path $log) -and (Get-Content $log) -match "^OK pid=$target$" } 'memhog to verify its memory' 30
    }
}
