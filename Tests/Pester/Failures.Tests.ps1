# Bad input and failures: proper error records, the target unharmed, nothing left behind.

BeforeDiscovery {
    # The points where a dump is made to fail (CRIUPS_FAIL_AT); RestoreFailures.Tests.ps1 has the restore's.
    $script:DumpPoints = @('after-seize', 'mid-memory', 'before-kill')
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:SelfCheck = Get-TestTarget 'selfcheck'
    $script:Checkpoint = 'CriuPS.Cmdlets.CheckpointProcessCommand'
    $script:Restore = 'CriuPS.Cmdlets.RestoreProcessCommand'
    $script:GetImage = 'CriuPS.Cmdlets.GetCheckpointImageCommand'
}

Describe 'Checkpoint-Process refuses what it cannot do, with proper error records' {
    AfterEach { Stop-TestProcesses }

    It 'reports an unknown PID and still checkpoints the other processes given' {
        $work = Join-Path $TestDrive 'others'
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        Push-Location $TestDrive
        try {
            $images = Checkpoint-Process -Id 999999, $target -ErrorVariable errors -ErrorAction SilentlyContinue
        }
        finally { Pop-Location }
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be "ProcessNotFound,$Checkpoint"
        $errors[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $errors[0].TargetObject | Should -Be 999999
        @($images).Count | Should -Be 1
        $images.Path | Should -BeLike (Join-Path $TestDrive "selfcheck-$target-*")
    }

    It 'refuses <What> with <ErrorId>' -ForEach @(
        @{ What = 'a kernel thread'; Id = 2; ErrorId = 'KernelThread'; Category = 'InvalidArgument' }
        @{ What = 'this PowerShell process'; Id = $PID; ErrorId = 'SelfCheckpoint'; Category = 'InvalidOperation' }
    ) {
        $path = Join-Path $TestDrive "refused-$ErrorId"
        Checkpoint-Process -Id $Id -ImagePath $path -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be "$ErrorId,$Checkpoint"
        $errors[0].CategoryInfo.Category | Should -Be $Category
        $errors[0].TargetObject | Should -Be $Id
        $errors[0].Exception.StackTrace | Should -Not -BeNullOrEmpty -Because 'the record carries the exception'
        $errors[0].ToString() | Should -Not -Match ' at CriuPS\.' -Because 'users see a message, not a stack trace'
        Test-Path $path | Should -BeFalse
    }

    It 'refuses a process that another tracer holds, which carries on unharmed' {
        $work = Join-Path $TestDrive 'traced'
        $log = Join-Path $work 'selfcheck.log'
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        Start-TestTarget -Program (Get-TestTarget 'tracer') -Arguments $target -WorkDirectory (Join-Path $TestDrive 'tracer') | Out-Null
        Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'traced-image') -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be "NotTraceable,$Checkpoint"
        $errors[0].CategoryInfo.Category | Should -Be 'PermissionDenied'
        $errors[0].ErrorDetails.RecommendedAction | Should -Match 'debugger'
        Invoke-SelfCheck $target $log | Should -Match '^OK'
    }

    It 'refuses, before freezing, a child that shares memory and signal handlers with its parent without being a thread' {
        $work = Join-Path $TestDrive 'clonevm'
        $target = Start-TestTarget -Program (Get-TestTarget 'clonevm') -Arguments $work -WorkDirectory $work
        $child = [int](Get-Content "/proc/$target/task/$target/children" -Raw).Trim()
        Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'clonevm-image') -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be "Unsupported,$Checkpoint"
        $errors[0].Exception.Message | Should -Match 'nothing was frozen'
        $errors[0].Exception.Message | Should -Match "process $child shares its memory and signal handlers with its parent $target \(cloned with CLONE_VM \| CLONE_SIGHAND"
        Test-ProcessAlive $target | Should -BeTrue
        Test-ProcessAlive $child | Should -BeTrue
    }

    It 'gives up with FreezeTimeout on a thread that cannot stop, and leaves the process running' {
        $work = Join-Path $TestDrive 'vforkstop'
        $target = Start-TestTarget -Program (Get-TestTarget 'vforkstop') -WorkDirectory $work
        Wait-Until { (Get-Content "/proc/$target/stat" -Raw) -match '\) D ' } 'the parent to wait in vfork (state D)'
        $child = [int](Get-Content "/proc/$target/task/$target/children" -Raw).Trim()
        Register-TestProcess $child
        $path = Join-Path $TestDrive 'image-vforkstop'

        $started = [DateTime]::UtcNow
        Checkpoint-Process -Id $target -ImagePath $path -FreezeTimeout 1 -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        ([DateTime]::UtcNow - $started).TotalSeconds | Should -BeLessThan 10
        $errors[0].FullyQualifiedErrorId | Should -Be "FreezeTimeout,$Checkpoint"
        $errors[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
        $errors[0].Exception.Message | Should -Match "Thread $target of process $target did not stop within 1 s: it waits uninterruptibly in the kernel \(state D"
        Test-Path $path | Should -BeFalse
        (Get-Content "/proc/$target/status" | Select-String '^TracerPid:\s+(\d+)').Matches[0].Groups[1].Value | Should -Be '0'

        # Once the child goes on, the parent does too: it was never touched.
        Send-Signal $child 'CONT'
        Wait-Until { Test-Path (Join-Path $work 'done') } 'the parent to carry on after its vfork'
        Test-ProcessAlive $target | Should -BeTrue
    }

    It 'refuses an image path that is a file' {
        $work = Join-Path $TestDrive 'file-path'
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        $file = Join-Path $TestDrive 'a-file'
        Set-Content $file 'not a directory'
        Checkpoint-Process -Id $target -ImagePath $file -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be "ImagePathUnusable,$Checkpoint"
        $errors[0].Exception.Message | Should -Match 'is a file'
        Get-Content $file | Should -Be 'not a directory'
        Test-ProcessAlive $target | Should -BeTrue
    }

    It 'refuses a non-empty image directory unless -Force, which replaces only an image' {
        $work = Join-Path $TestDrive 'force'
        $target = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        $path = Join-Path $TestDrive 'occupied'
        $old = Checkpoint-Process -Id $target -ImagePath $path -LeaveRunning
        Checkpoint-Process -Id $target -ImagePath $path -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be "ImagePathUnusable,$Checkpoint"
        $errors[0].ErrorDetails.RecommendedAction | Should -Match '-Force'
        Test-ProcessAlive $target | Should -BeTrue
        $new = Checkpoint-Process -Id $target -ImagePath $path -Force -LeaveRunning
        $new.CreatedAt | Should -BeGreaterThan $old.CreatedAt
        @(Get-ChildItem $TestDrive -Force -Filter '.occupied.criups-*') | Should -BeNullOrEmpty

        $other = Join-Path $TestDrive 'not-an-image'
        New-Item -ItemType Directory $other | Out-Null
        Set-Content (Join-Path $other 'precious') 'keep me'
        Checkpoint-Process -Id $target -ImagePath $other -Force -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be "ImagePathUnusable,$Checkpoint"
        Get-Content (Join-Path $other 'precious') | Should -Be 'keep me'
        Test-ProcessAlive $target | Should -BeTrue
    }

    It 'throws a terminating error with -ErrorAction Stop' {
        { Checkpoint-Process -Id 999999 -ImagePath (Join-Path $TestDrive 'stop') -ErrorAction Stop } |
            Should -Throw -ErrorId "ProcessNotFound,$Checkpoint"
    }

    It 'refuses one -ImagePath for several processes beyond the first' {
        $a = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', (Join-Path $TestDrive 'a') -WorkDirectory (Join-Path $TestDrive 'a')
        $b = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', (Join-Path $TestDrive 'b') -WorkDirectory (Join-Path $TestDrive 'b')
        $images = Checkpoint-Process -Id $a, $b -ImagePath (Join-Path $TestDrive 'shared') -LeaveRunning -ErrorVariable errors -ErrorAction SilentlyContinue
        @($images).Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be "ImagePathShared,$Checkpoint"
        $errors[0].TargetObject | Should -Be $b
    }
}

Describe 'A dump that fails at <Point> leaves the process exactly as it was' -ForEach ($DumpPoints | ForEach-Object { @{ Point = $_ } }) {
    AfterEach {
        Stop-TestProcesses
        $env:CRIUPS_FAIL_AT = $null
    }

    It 'releases the process unharmed and writes nothing to the image path (<Mode> mode)' -ForEach @(@{ Mode = 'sleep' }, @{ Mode = 'read' }) {
        $work = Join-Path $TestDrive "fail-$Point-$Mode"
        $log = Join-Path $work 'selfcheck.log'
        $target = Start-TestTarget -Program $SelfCheck -Arguments $Mode, $work -WorkDirectory $work
        $path = Join-Path $TestDrive "image-$Point-$Mode"
        $env:CRIUPS_FAIL_AT = $Point
        Checkpoint-Process -Id $target -ImagePath $path -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $env:CRIUPS_FAIL_AT = $null
        $errors[0].FullyQualifiedErrorId | Should -Be "DumpFailed,$Checkpoint"
        $errors[0].Exception.Message | Should -Match "injected test failure at '$Point'"
        Test-Path $path | Should -BeFalse
        @(Get-ChildItem $TestDrive -Force -Filter ".image-$Point-$Mode.criups-*") | Should -BeNullOrEmpty
        $errors[0].ErrorDetails.Message -match 'log: (\S+)\)$' | Should -BeTrue
        $failedLog = $Matches[1]
        $failedLog | Should -FileContentMatch 'injected test failure'
        Remove-Item $failedLog

        Test-ProcessAlive $target | Should -BeTrue
        (Get-Content "/proc/$target/status" | Select-String '^TracerPid:').Line | Should -Match '\s0$'
        Invoke-SelfCheck $target $log | Should -Match "^OK counter=\d+ pid=$target$"
        Invoke-SelfCheck $target $log 'TERM' | Should -Match '^EXIT OK'
    }
}

Describe 'Dump failure points' {
    It 'tests every point a dump passes' -ForEach @(@{ Tested = $DumpPoints }) {
        $Tested | Should -Be (Get-FailurePoints 'Dump')
    }
}

Describe 'Stopping a checkpoint (Ctrl+C)' {
    AfterEach { Stop-TestProcesses }

    It 'releases the process unharmed and leaves no image' {
        $work = Join-Path $TestDrive 'cancel'
        $log = Join-Path $work 'memhog.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'memhog') -Arguments '512', $log -WorkDirectory $work
        $path = Join-Path $TestDrive 'cancelled-image'
        $shell = [powershell]::Create()
        $null = $shell.AddScript("Import-Module '$(Join-Path (Get-RepositoryRoot) 'out/CriuPS/CriuPS.psd1')'; Checkpoint-Process -Id $target -ImagePath '$path'")
        $running = $shell.BeginInvoke()
        Wait-Until { @(Get-ChildItem $TestDrive -Force -Filter '.cancelled-image.criups-*').Count -gt 0 } 'the checkpoint to start writing'
        $shell.Stop()
        $running.IsCompleted | Should -BeTrue
        $shell.Dispose()
        Test-Path $path | Should -BeFalse
        @(Get-ChildItem $TestDrive -Force -Filter '.cancelled-image.criups-*') | Should -BeNullOrEmpty
        (Get-Content "/proc/$target/status" | Select-String '^TracerPid:').Line | Should -Match '\s0$'
        Send-Signal $target 'USR1'
        Wait-Until { (Test-Path $log) -and (Get-Content $log) -match "^OK pid=$target$" } 'memhog to verify its memory' 30
    }
}

Describe 'Restore-Process refuses what it cannot do, and leaves nothing half-alive' {
    BeforeAll {
        $work = Join-Path $TestDrive 'source'
        $script:Log = Join-Path $work 'selfcheck.log'
        $script:Original = Start-TestTarget -Program $SelfCheck -Arguments 'sleep', $work -WorkDirectory $work
        $script:Image = Checkpoint-Process -Id $Original -ImagePath (Join-Path $TestDrive 'good') -LeaveRunning
    }
    AfterAll { Stop-TestProcesses }

    It 'reports a PID that is in use and starts nothing' {
        $hosts = (Get-RestoreHosts).Count
        Restore-Process $Image.Path -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be "PidInUse,$Restore"
        $errors[0].CategoryInfo.Category | Should -Be 'ResourceExists'
        $errors[0].TargetObject | Should -Be $Original
        (Get-RestoreHosts).Count | Should -Be $hosts
        Invoke-SelfCheck $Original $Log | Should -Match "^OK counter=\d+ pid=$Original$"
    }

    It 'reports a directory that is not an image' {
        Restore-Process $TestDrive -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be "ImageNotFound,$Restore"
        Restore-Process (Join-Path $TestDrive 'missing') -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be "ImageNotFound,$Restore"
    }

    Context 'with a damaged image' {
        BeforeAll {
            Send-Signal $Original 'KILL'
            Wait-Until { -not (Test-ProcessAlive $Original) } 'the original to end'
        }

        It 'names <File> and the problem when it is <Damage>, and starts nothing' -ForEach @(
            @{ File = "core-{0}.img"; Damage = 'truncated'; Problem = 'truncated|beyond|ends' }
            @{ File = "mm-{0}.img"; Damage = 'of a foreign kind'; Problem = 'magic' }
            @{ File = 'files.img'; Damage = 'garbage'; Problem = 'entry|decode|protobuf|invalid|magic' }
            @{ File = 'inventory.img'; Damage = 'empty'; Problem = 'empty|truncated|magic' }
            @{ File = "pagemap-{0}.img"; Damage = 'truncated'; Problem = 'truncated|beyond|ends' }
            @{ File = 'pages-1.img'; Damage = 'truncated'; Problem = 'truncated' }
        ) {
            $copy = Join-Path $TestDrive "damaged-$($File -replace '\W', '')-$($Damage -replace '\W', '')"
            Copy-Item $Image.Path $copy -Recurse
            # Without its digests, as CRIU's images come: what reading the files finds by itself (the digests find
            # all of these first: Integrity.Tests.ps1).
            Remove-Item (Join-Path $copy 'criups-digests.img')
            $victim = Join-Path $copy ($File -f $Original)
            $length = (Get-Item $victim).Length
            switch ($Damage) {
                'truncated' { $stream = [IO.File]::Open($victim, 'Open'); $stream.SetLength([long]($length * 0.6)); $stream.Dispose() }
                'of a foreign kind' { [IO.File]::WriteAllBytes($victim, [IO.File]::ReadAllBytes((Join-Path $copy 'pstree.img'))) }
                'garbage' { $bytes = [IO.File]::ReadAllBytes($victim); for ($i = 8; $i -lt $length; $i++) { $bytes[$i] = 0xFF }; [IO.File]::WriteAllBytes($victim, $bytes) }
                'empty' { [IO.File]::WriteAllBytes($victim, [byte[]]@()) }
            }
            $hosts = (Get-RestoreHosts).Count
            Restore-Process $copy -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $errors[0].FullyQualifiedErrorId | Should -Be "ImageCorrupt,$Restore"
            $errors[0].CategoryInfo.Category | Should -Be 'InvalidData'
            $errors[0].Exception.Message | Should -Match ([regex]::Escape((Split-Path $victim -Leaf)))
            $errors[0].Exception.Message | Should -Match $Problem
            Test-ProcessAlive $Original | Should -BeFalse
            (Get-RestoreHosts).Count | Should -Be $hosts

            if ($File -ne 'pages-1.img') {
                Get-CheckpointImage -LiteralPath $copy -ErrorVariable readErrors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
                $readErrors[0].FullyQualifiedErrorId | Should -Be "ImageCorrupt,$GetImage"
            }
        }

        It 'refuses an image whose saved vDSO exports a function this kernel''s lacks, naming it, and starts nothing' {
            $copy = Join-Path $TestDrive 'foreign-vdso'
            Copy-Item $Image.Path $copy -Recurse
            # An image taken on another kernel build is intact: the edit below stands for it, so the digests go.
            Remove-Item (Join-Path $copy 'criups-digests.img')
            $vdso = (Import-CheckpointImageFile (Join-Path $copy "mm-$Original.img")).Entries[0].Vmas | Where-Object status -Match 'VMA_AREA_VDSO'
            $start = [Convert]::ToUInt64($vdso.start.Substring(2), 16)
            $location = Get-SavedPageLocation $copy $Original $start
            $location | Should -Not -BeNullOrEmpty -Because 'the image holds the vDSO''s pages'
            # Another kernel's vDSO that exports __vdso_getcpX (and getcpX, whose name is the tail of the same string).
            $bytes = [IO.File]::ReadAllBytes($location.Path)
            $vdsoBytes = [byte[]]$bytes[$location.Offset..($location.Offset + 8191)]
            $at = [Text.Encoding]::ASCII.GetString($vdsoBytes).IndexOf("__vdso_getcpu`0")
            $at | Should -BeGreaterThan 0
            $bytes[$location.Offset + $at + 12] = [byte][char]'X'
            [IO.File]::WriteAllBytes($location.Path, $bytes)

            $hosts = (Get-RestoreHosts).Count
            Restore-Process $copy -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $errors[0].FullyQualifiedErrorId | Should -Be "ImageIncompatible,$Restore"
            $errors[0].Exception.Message | Should -Match 'the saved vDSO exports __vdso_getcpX, getcpX, which this kernel''s vDSO lacks'
            $errors[0].ErrorDetails.RecommendedAction | Should -Match 'kernel'
            Test-ProcessAlive $Original | Should -BeFalse
            (Get-RestoreHosts).Count | Should -Be $hosts
        }
    }
}
