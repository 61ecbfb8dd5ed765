# Test-CheckpointSupport: one object per feature CriuPS relies on, -Quiet, -Name, and probes that leave nothing behind.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Essential = 'PtraceSeize', 'Clone3SetTid', 'PrSetMmMap', 'PidfdGetfd', 'RseqConfiguration'
    $script:Optional = 'PagemapScan', 'WriteTracking', 'TimerIdRestore', 'TcpRepair', 'Nftables', 'Cgroups', 'ShadowStack', 'CudaCheckpoint'
    # The privileges of this session, with the bit of each capability in CapEff.
    $script:Capabilities = [ordered]@{
        CAP_CHECKPOINT_RESTORE = 40; CAP_SYS_PTRACE = 19; CAP_SYS_ADMIN = 21; CAP_DAC_OVERRIDE = 1; CAP_DAC_READ_SEARCH = 2; CAP_SETUID = 7; CAP_SETGID = 6; CAP_SETPCAP = 8
        CAP_SYS_CHROOT = 18; CAP_SYS_NICE = 23; CAP_SYS_RESOURCE = 24; CAP_AUDIT_CONTROL = 30; CAP_NET_ADMIN = 12; CAP_NET_RAW = 13
    }
    $script:Privileges = @('Root') + $Capabilities.Keys + 'YamaPtraceScope'

    # The PIDs whose parent is this PowerShell process.
    function Get-ChildProcessId {
        foreach ($stat in Get-ChildItem /proc/[0-9]*/stat -ErrorAction Ignore) {
            $text = Get-Content $stat -Raw -ErrorAction Ignore
            if ($text -and [int]$text.Substring($text.LastIndexOf(')') + 2).Split(' ')[1] -eq $PID) { [int]$stat.Directory.Name }
        }
    }
}

Describe 'Test-CheckpointSupport' {
    BeforeAll { $script:Features = @(Test-CheckpointSupport) }

    It 'reports every feature, the essential ones first, each with its requirement, impact and what was seen' {
        $Features.Name | Should -Be ($Essential + $Optional + $Privileges)
        foreach ($feature in $Features) {
            $feature | Should -BeOfType [CriuPS.Engine.Support.SupportFeature]
            $feature.Available | Should -BeOfType [bool]
            $feature.Essential | Should -Be ($feature.Name -in $Essential) -Because $feature.Name
            $feature.Requirement | Should -Not -BeNullOrEmpty -Because $feature.Name
            $feature.Impact | Should -Not -BeNullOrEmpty -Because $feature.Name
            $feature.Detail | Should -Not -BeNullOrEmpty -Because $feature.Name
        }
    }

    It 'finds the features this machine has (root on a recent kernel)' {
        # Every other test of this suite checkpoints and restores: they need these too.
        foreach ($name in $Essential) { ($Features | Where-Object Name -EQ $name).Available | Should -BeTrue -Because ($Features | Where-Object Name -EQ $name).Detail }
        ($Features | Where-Object Name -EQ 'PtraceSeize').Detail | Should -Match 'seized and interrupted a test process \(pid \d+\)'
        ($Features | Where-Object Name -EQ 'Cgroups').Detail | Should -Match 'cgroup|v2|v1'
        # Pre-dumps rely on it; this kernel (6.7 or later) has it.
        $tracking = $Features | Where-Object Name -EQ 'WriteTracking'
        $tracking.Available | Should -BeTrue -Because $tracking.Detail
        $tracking.Detail | Should -Match 'reported by PAGEMAP_SCAN'
    }

    It 'reports whether this session is root, and each capability as its effective set has it' {
        $root = $Features | Where-Object Name -EQ 'Root'
        $root.Available | Should -Be ((id -u) -eq '0')
        $root.Detail | Should -Match "^effective uid $(id -u) \($(id -un)\), real uid $(id -ru)"
        $effective = [Convert]::ToUInt64(((Get-Content /proc/self/status) -match '^CapEff:')[0].Split(':')[1].Trim(), 16)
        foreach ($name in $Capabilities.Keys) {
            $feature = $Features | Where-Object Name -EQ $name
            $has = ($effective -band (1uL -shl $Capabilities[$name])) -ne 0
            $feature.Available | Should -Be $has -Because $name
            $feature.Detail | Should -Match $(if ($has) { "^$name is effective" } else { "^$name is (neither permitted nor|permitted but not) effective: this session runs as" }) -Because $name
            $feature.Essential | Should -BeFalse
        }
        $yama = $Features | Where-Object Name -EQ 'YamaPtraceScope'
        $scope = '/proc/sys/kernel/yama/ptrace_scope'
        if (Test-Path $scope) { $yama.Detail | Should -Match "kernel.yama.ptrace_scope is $(Get-Content $scope)" } else { $yama.Available | Should -BeTrue; $yama.Detail | Should -Match 'no Yama' }
    }

    It 'reports the CUDA checkpoint API missing, not failing, where there is no NVIDIA driver' {
        $handle = [IntPtr]::Zero
        $driver = [System.Runtime.InteropServices.NativeLibrary]::TryLoad('libcuda.so.1', [ref]$handle)
        if ($driver) { [System.Runtime.InteropServices.NativeLibrary]::Free($handle) }
        $cuda = $Features | Where-Object Name -EQ 'CudaCheckpoint'
        if (-not $driver) {
            $cuda.Available | Should -BeFalse
            $cuda.Detail | Should -Match 'libcuda\.so\.1 cannot be loaded'
        }
        else {
            $cuda.Detail | Should -Match 'libcuda\.so\.1 (exports|lacks)'
        }
    }

    It 'reports shadow stacks as the CPU flags say' {
        $cpu = [bool](Select-String -Path /proc/cpuinfo -Pattern '^flags\s*:.*\buser_shstk\b' -List)
        $shadow = $Features | Where-Object Name -EQ 'ShadowStack'
        if (-not $cpu) { $shadow.Available | Should -BeFalse }
        $shadow.Detail | Should -Match $(if ($cpu) { 'the CPU has user_shstk' } else { 'no user_shstk' })
    }

    It 'returns a single Boolean with -Quiet: whether the essential features are available' {
        $quiet = @(Test-CheckpointSupport -Quiet)
        $quiet.Count | Should -Be 1
        $quiet[0] | Should -BeOfType [bool]
        $quiet[0] | Should -Be (-not ($Features | Where-Object { $_.Essential -and -not $_.Available }))
    }

    It 'checks only the features -Name selects, wildcards included, and -Quiet then covers those' {
        (Test-CheckpointSupport -Name 'Pidfd*', 'Cgroups').Name | Should -Be @('PidfdGetfd', 'Cgroups')
        $missing = @($Features | Where-Object { -not $_.Available })
        if ($missing) { Test-CheckpointSupport -Name $missing[0].Name -Quiet | Should -BeFalse }
        Test-CheckpointSupport -Name PidfdGetfd -Quiet | Should -BeTrue
    }

    It 'reports a feature name it does not know as FeatureNotFound' {
        $found = Test-CheckpointSupport -Name 'Teleport', 'Cgroups' -ErrorVariable errors -ErrorAction SilentlyContinue
        $found.Name | Should -Be 'Cgroups'
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'FeatureNotFound,CriuPS.Cmdlets.TestCheckpointSupportCommand'
        $errors[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $errors[0].TargetObject | Should -Be 'Teleport'
        $errors[0].ErrorDetails.RecommendedAction | Should -Match 'PtraceSeize'
    }

    It 'leaves nothing behind: no process, no open descriptor' {
        Test-CheckpointSupport | Out-Null  # a first run loads whatever the runtime loads once
        $descriptors = @(Get-ChildItem /proc/self/fd).Count
        $children = @(Get-ChildProcessId)
        Test-CheckpointSupport | Out-Null
        @(Get-ChildProcessId) | Should -Be $children
        @(Get-ChildItem /proc/self/fd).Count | Should -Be $descriptors
    }
}
