# The CPU's description travels with the image (cpuinfo.img, written as CRIU writes it), and the restore checks it
# before it creates anything: an image that needs what this CPU lacks is refused naming it, one that needs less
# is restored. Test-CheckpointSupport -ImagePath answers the same question without restoring.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:SelfCheck = Get-TestTarget 'selfcheck'
    $script:Restore = 'CriuPS.Cmdlets.RestoreProcessCommand'
    # The XSAVE components this kernel enables (XCR0).
    $script:Enabled = [CriuPS.Native.Arch.X86_64.XStateLayout]::Current.SupportedFeatures
    $script:Layout = [CriuPS.Native.Arch.X86_64.XStateLayout]::Current

    # Starts PROGRAM (selfcheck by default) in $TestDrive/NAME, lets it check itself, checkpoints it into
    # $TestDrive/NAME-image; returns the pid, its log and the image path.
    function New-CheckpointedTarget([string]$Name, [string]$Program = $SelfCheck, [string[]]$Arguments = @('sleep'), [string]$LogName = 'selfcheck.log') {
        $work = Join-Path $TestDrive $Name
        $log = Join-Path $work $LogName
        $target = Start-TestTarget -Program $Program -Arguments ($Arguments + $work) -WorkDirectory $work
        Invoke-SelfCheck $target $log | Should -Match "^OK .*pid=$target$"
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive "$Name-image")
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        [pscustomobject]@{ Pid = $target; Log = $log; Image = $image.Path }
    }

    # Changes the image's saved CPU (the one entry of cpuinfo.img, as Import-CheckpointImageFile shows it) with
    # EDIT, and writes it back with Export-CheckpointImageFile.
    function Edit-SavedCpu([string]$Image, [scriptblock]$Edit) {
        $path = Join-Path $Image 'cpuinfo.img'
        $file = Import-CheckpointImageFile $path
        & $Edit $file.entries[0].x86_entry[0]
        $file | Export-CheckpointImageFile -Path $path -Force
    }

    # The XSAVE components the saved threads have in use: xstate_bv of every core image.
    function Get-XStateInUse([string]$Image) {
        $inUse = 0L
        foreach ($core in Get-ChildItem $Image -Filter 'core-*.img') {
            $xsave = (Import-CheckpointImageFile $core.FullName).entries[0].thread_info.fpregs.xsave
            if ($xsave) { $inUse = $inUse -bor [long]$xsave.xstate_bv }
        }
        $inUse
    }

    # Restores IMAGE expecting ImageIncompatible naming cpuinfo.img and each of FEATURES, with nothing created.
    function Assert-Refused([string]$Image, [int]$Target, [string[]]$Features) {
        Restore-Process $Image -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be "ImageIncompatible,$Restore"
        $errors[0].Exception.Message | Should -Match ([regex]::Escape((Join-Path $Image 'cpuinfo.img')))
        foreach ($feature in $Features) { $errors[0].Exception.Message | Should -Match ([regex]::Escape($feature)) }
        $errors[0].ErrorDetails.RecommendedAction | Should -Match 'Test-CheckpointSupport -ImagePath'
        # Refused before anything was created: the PID is free, and the restore never reached its creation phase.
        Test-Path "/proc/$Target" | Should -BeFalse
        Join-Path $Image 'restore.log' | Should -Not -FileContentMatch 'Creating the processes'
    }
}

Describe 'cpuinfo.img' {
    AfterEach { Stop-TestProcesses }

    It 'describes this CPU as /proc/cpuinfo does, and fits it' {
        $saved = New-CheckpointedTarget 'describes'
        $cpu = (Import-CheckpointImageFile (Join-Path $saved.Image 'cpuinfo.img')).entries[0].x86_entry[0]
        $info = Get-Content /proc/cpuinfo
        $cpu.vendor_id | Should -Be $(if ($info -match 'GenuineIntel') { 'INTEL' } else { 'AMD' })
        $cpu.cpu_family | Should -Be ([int](($info -match '^cpu family\s*:')[0] -replace '.*:\s*'))
        $cpu.model | Should -Be ([int](($info -match '^model\s*:')[0] -replace '.*:\s*'))
        $cpu.capability_ver | Should -Be 2
        $cpu.capability.Count | Should -Be 19
        # CRIU's mask: XCR0 less the SSE and MPX bound-register bits, which its typo clears.
        $cpu.xfeatures_mask | Should -Be ($Enabled -band 0x2F5)
        $cpu.xsave_size | Should -Be $Layout.Size

        $fit = Test-CheckpointSupport -ImagePath $saved.Image
        $fit | Should -BeOfType [CriuPS.Engine.Resources.Cpu.CpuCompatibility]
        $fit.Fits | Should -BeTrue
        $fit.MissingFeatures | Should -BeNullOrEmpty
        $fit.SavedCpu | Should -Be $fit.ThisCpu
        $fit.Detail | Should -Match 'cpuinfo\.img .* and the XSAVE state of 1 thread'
        $fit.Warning | Should -BeNullOrEmpty
        (Get-CheckpointImage $saved.Image).Cpu | Should -Be $fit.SavedCpu
        Get-CheckpointImage $saved.Image | Test-CheckpointSupport -Quiet | Should -BeTrue
    }
}

Describe 'Restore-Process and Test-CheckpointSupport -ImagePath on an image that needs what this CPU lacks' {
    AfterEach { Stop-TestProcesses }

    It 'refuses XSAVE state this kernel does not enable, naming the component, and creates nothing' {
        $saved = New-CheckpointedTarget 'xfeature'
        $names = @{ 9 = 'PKRU'; 17 = 'AMX tile config'; 18 = 'AMX tile data'; 19 = 'APX' }
        $component = @(9, 17, 18, 19 | Where-Object { -not ($Enabled -band (1L -shl $_)) })[0]
        $feature = "xsave component $component ($($names[$component]))"
        Edit-SavedCpu $saved.Image { param($cpu) $cpu.xfeatures_mask = $cpu.xfeatures_mask -bor (1L -shl $component) }

        $fit = Test-CheckpointSupport -ImagePath $saved.Image
        $fit.Fits | Should -BeFalse
        $fit.MissingFeatures | Should -Be @($feature)
        Test-CheckpointSupport -ImagePath $saved.Image -Quiet | Should -BeFalse
        Assert-Refused $saved.Image $saved.Pid $feature
    }

    It 'refuses an instruction-set feature this CPU lacks, naming it, and creates nothing' {
        $saved = New-CheckpointedTarget 'instruction'
        $cpu = (Import-CheckpointImageFile (Join-Path $saved.Image 'cpuinfo.img')).entries[0].x86_entry[0]
        # Features some CPUs lack, at their place in CRIU's words (word = CPUID register, bit); the first this one lacks.
        $candidates = @(
            @{ Name = 'avx512_fp16'; Word = 18; Bit = 23 }, @{ Name = 'amx_tile'; Word = 18; Bit = 24 },
            @{ Name = 'serialize'; Word = 18; Bit = 14 }, @{ Name = 'sha_ni'; Word = 9; Bit = 29 },
            @{ Name = 'xop'; Word = 6; Bit = 11 }, @{ Name = 'fma4'; Word = 6; Bit = 16 }, @{ Name = 'tbm'; Word = 6; Bit = 21 })
        $lacking = @($candidates | Where-Object { -not ($cpu.capability[$_.Word] -band (1L -shl $_.Bit)) })[0]
        $lacking | Should -Not -BeNullOrEmpty -Because 'no x86-64 CPU has all of these'
        Edit-SavedCpu $saved.Image { param($cpu) $cpu.capability[$lacking.Word] = $cpu.capability[$lacking.Word] -bor (1L -shl $lacking.Bit) }

        $fit = Test-CheckpointSupport -ImagePath $saved.Image
        $fit.Fits | Should -BeFalse
        $fit.MissingFeatures | Should -Be @($lacking.Name)
        Assert-Refused $saved.Image $saved.Pid $lacking.Name
    }

    It 'refuses a cpuinfo.img of a capability version it does not know, naming the file' {
        $saved = New-CheckpointedTarget 'version'
        Edit-SavedCpu $saved.Image { param($cpu) $cpu.capability_ver = 3 }
        Test-CheckpointSupport -ImagePath $saved.Image -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be 'ImageIncompatible,CriuPS.Cmdlets.TestCheckpointSupportCommand'
        $errors[0].Exception.Message | Should -Match 'cpuinfo\.img: capability version 3'
        Restore-Process $saved.Image -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be "ImageIncompatible,$Restore"
        Test-Path "/proc/$($saved.Pid)" | Should -BeFalse
    }
}

Describe 'Restore-Process on an image that needs less than this CPU has' {
    AfterEach {
        Remove-Item Env:GLIBC_TUNABLES -ErrorAction Ignore
        Stop-TestProcesses
    }

    It 'restores a process whose saved CPU had no AVX-512, which it never used, and warns of the state this CPU adds' {
        # glibc picks no AVX-512 code, so the process never has AVX-512 state in use: as on a CPU without AVX-512.
        $env:GLIBC_TUNABLES = 'glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD'
        $saved = New-CheckpointedTarget 'less'
        Remove-Item Env:GLIBC_TUNABLES
        $inUse = Get-XStateInUse $saved.Image
        $cpu = (Import-CheckpointImageFile (Join-Path $saved.Image 'cpuinfo.img')).entries[0].x86_entry[0]
        # Every extended component no thread uses goes; with the AVX-512 ones, the AVX-512 instructions.
        $unused = $cpu.xfeatures_mask -band -bnot $inUse -band -bnot 3L
        $unused | Should -Not -Be 0 -Because "the threads use 0x$('{0:x}' -f $inUse) of 0x$('{0:x}' -f $cpu.xfeatures_mask)"
        $kept = $cpu.xfeatures_mask -band -bnot $unused
        $dropAvx512 = -not ($inUse -band 0xE0)
        # The area a CPU with only the kept components has: up to the end of the last of them.
        $size = 576
        foreach ($component in 2..63 | Where-Object { $kept -band (1L -shl $_) }) {
            $place = $Layout.Component($component)
            $size = [Math]::Max($size, $place.Item1 + $place.Item2)
        }
        Edit-SavedCpu $saved.Image {
            param($cpu)
            $cpu.xfeatures_mask = $kept
            $cpu.xsave_size = $size
            $cpu.xsave_size_max = $size
            if ($dropAvx512) {
                $cpu.capability[9] = $cpu.capability[9] -band -bnot 0xDC230000L   # avx512f dq ifma pf er cd bw vl
                $cpu.capability[11] = $cpu.capability[11] -band -bnot 0x5842L     # avx512vbmi vbmi2 vnni bitalg vpopcntdq
                $cpu.capability[18] = $cpu.capability[18] -band -bnot 0x80010CL   # avx512_4vnniw 4fmaps vp2intersect fp16
            }
        }
        $dropAvx512 | Should -BeTrue -Because 'glibc.cpu.hwcaps keeps glibc off AVX-512'

        $fit = Test-CheckpointSupport -ImagePath $saved.Image -WarningVariable warnings -WarningAction SilentlyContinue
        $fit.Fits | Should -BeTrue
        $fit.MissingFeatures | Should -BeNullOrEmpty
        $warnings.Count | Should -Be 1
        if ($Enabled -band 0xE0) { $fit.Warning | Should -Match 'AVX-512' }

        $restored = Restore-Process $saved.Image -WarningVariable warnings -WarningAction SilentlyContinue
        Register-TestProcess $restored.Id
        $restored.Id | Should -Be $saved.Pid
        ($warnings -join "`n") | Should -Match 'enables XSAVE state the checkpointed CPU did not'
        Invoke-SelfCheck $saved.Pid $saved.Log | Should -Match "^OK counter=\d+ pid=$($saved.Pid)$"
        Invoke-SelfCheck $saved.Pid $saved.Log 'TERM' | Should -Match "^EXIT OK counter=\d+ pid=$($saved.Pid)$"
    }

    It 'keeps the vector and mask registers a thread uses when the components it does not use are cleared' {
        $saved = New-CheckpointedTarget 'registers' -Program (Get-TestTarget 'regcheck') -Arguments @() -LogName 'regcheck.log'
        $inUse = Get-XStateInUse $saved.Image
        $mask = (Import-CheckpointImageFile (Join-Path $saved.Image 'cpuinfo.img')).entries[0].x86_entry[0].xfeatures_mask
        $unused = $mask -band -bnot $inUse -band -bnot 3L
        if ($Enabled -band 0xE0) { $unused | Should -Not -Be 0 -Because 'regcheck leaves the upper halves of zmm0-15 unused' }
        Edit-SavedCpu $saved.Image { param($cpu) $cpu.xfeatures_mask = $mask -band -bnot $unused }

        $restored = Restore-Process $saved.Image -WarningAction SilentlyContinue
        Register-TestProcess $restored.Id
        $restored.Id | Should -Be $saved.Pid
        $line = Invoke-SelfCheck $saved.Pid $saved.Log
        $line | Should -Match "^OK( avx512)? pid=$($saved.Pid)$"
        if ($Enabled -band 0xE0) { $line | Should -Match 'avx512' }
    }
}

Describe 'Images without cpuinfo.img' {
    AfterEach { Stop-TestProcesses }

    It 'restores one, saying in the log that no CPU description was saved' {
        $saved = New-CheckpointedTarget 'none'
        # As CRIU writes images by default: no cpuinfo.img, and no criups-digests.img either (it would list the file).
        Remove-Item (Join-Path $saved.Image 'cpuinfo.img'), (Join-Path $saved.Image 'criups-digests.img')
        $fit = Test-CheckpointSupport -ImagePath $saved.Image
        $fit.Fits | Should -BeTrue
        $fit.SavedCpu | Should -BeNullOrEmpty
        $fit.Detail | Should -Match 'No CPU description was saved'
        (Get-CheckpointImage $saved.Image).Cpu | Should -BeNullOrEmpty

        $restored = Restore-Process $saved.Image
        Register-TestProcess $restored.Id
        $restored.Id | Should -Be $saved.Pid
        Join-Path $saved.Image 'restore.log' | Should -FileContentMatch 'No CPU description was saved'
        Invoke-SelfCheck $saved.Pid $saved.Log | Should -Match "^OK counter=\d+ pid=$($saved.Pid)$"
    }

    It 'checks the XSAVE state of the threads of CRIU''s images, which carry none' {
        $images = Join-Path (Get-SharedInterop) 'criu-4.2/family-dyn/images'
        Test-Path (Join-Path $images 'cpuinfo.img') | Should -BeFalse
        $fit = Test-CheckpointSupport -ImagePath $images
        $fit.SavedCpu | Should -BeNullOrEmpty
        $fit.Detail | Should -Match 'only the XSAVE state of its 6 thread\(s\)'
        # Their threads hold AVX-512 state (xsave components 5 and 7, taken on such a CPU): they fit where this CPU
        # has AVX-512, and elsewhere the check names what is missing.
        if ([System.Runtime.Intrinsics.X86.Avx512F]::IsSupported) {
            $fit.Fits | Should -BeTrue
        }
        else {
            $fit.Fits | Should -BeFalse
            $fit.MissingFeatures -join '; ' | Should -Match 'xsave component 5 \(AVX-512 opmask\)'
        }
    }
}
