# Images that travel to another kernel build: a process whose saved vDSO is another build's gets it back as a proxy
# of this kernel's (every saved entry point jumps into this kernel's vDSO), and its time calls keep working.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Interop = Get-SharedInterop

    # The saved bytes of the vDSO area of process PID in an image, and where they lie.
    function Get-SavedVdso([string]$ImagePath, [int]$ProcessId) {
        $area = (Get-CheckpointImage -LiteralPath $ImagePath).Processes | Where-Object Id -EQ $ProcessId |
            ForEach-Object MemoryAreas | Where-Object Kind -EQ 'vdso'
        $location = Get-SavedPageLocation $ImagePath $ProcessId $area.Start
        $stream = [IO.File]::OpenRead($location.Path)
        try {
            $bytes = [byte[]]::new($area.End - $area.Start)
            $stream.Position = $location.Offset
            $stream.ReadExactly($bytes)
        }
        finally { $stream.Dispose() }
        [pscustomobject]@{ Start = $area.Start; End = $area.End; Bytes = $bytes; Location = $location }
    }

    # The restored process's auxv entry AT_SYSINFO_EHDR (33): where it was told its vDSO is.
    function Get-VdsoAuxv([int]$ProcessId) {
        $auxv = [IO.File]::ReadAllBytes("/proc/$ProcessId/auxv")
        for ($i = 0; $i -lt $auxv.Length; $i += 16) {
            if ([BitConverter]::ToUInt64($auxv, $i) -eq 33) { return [BitConverter]::ToUInt64($auxv, $i + 8) }
        }
        $null
    }
}

Describe 'A process whose image holds another kernel build''s vDSO' {
    BeforeAll {
        $script:Work = Join-Path $TestDrive 'vdsotime'
        # lookup-only: glibc's pointers into the vDSO follow this build's layout, which the swap below takes away.
        $script:Target = Start-TestTarget -Program (Get-TestTarget 'vdsotime') -Arguments $Work, 'lookup-only' -WorkDirectory $Work
        $script:Log = Join-Path $Work 'vdsotime.log'
        $script:Images = Join-Path $TestDrive 'image'
        Checkpoint-Process -Id $Target -ImagePath $Images | Out-Null
        Wait-Until { -not (Test-ProcessAlive $Target) } 'the checkpointed target to end'

        # The counter-dyn vector's vDSO, saved by CRIU 4.2 on another build of this kernel, in place of ours.
        $script:Ours = Get-SavedVdso $Images $Target
        $vector = Join-Path $Interop 'criu-4.2/counter-dyn/images'
        $foreign = Get-SavedVdso $vector ([int](Get-Content (Join-Path $Interop 'criu-4.2/counter-dyn/pid.txt')))
        $foreign.Bytes.Length | Should -Be $Ours.Bytes.Length -Because 'the test swaps vDSOs of one size'
        [Linq.Enumerable]::SequenceEqual($foreign.Bytes, $Ours.Bytes) | Should -BeFalse -Because 'the vector''s vDSO must be another build''s'
        $stream = [IO.File]::OpenWrite($Ours.Location.Path)
        try { $stream.Position = $Ours.Location.Offset; $stream.Write($foreign.Bytes) }
        finally { $stream.Dispose() }
        # An image taken on another kernel build is intact: the edit above stands for it, so the digests go.
        Remove-Item (Join-Path $Images 'criups-digests.img')
    }
    AfterAll { Stop-TestProcesses }

    It 'is restored with the saved vDSO back at its address as a proxy of this kernel''s, which is parked elsewhere' {
        $restored = Restore-Process -ImagePath $Images
        Register-TestProcess $Target
        $restored.Id | Should -Be $Target
        Get-Content (Join-Path $Images 'restore.log') -Raw | Should -Match "vDSO of ${Target}: the saved one \(.*\) is another kernel build's; it becomes a proxy"

        # AT_SYSINFO_EHDR still leads to the saved vDSO, which holds the foreign build's ELF image with jumps in it.
        Get-VdsoAuxv $Target | Should -Be $Ours.Start
        $maps = Get-Content "/proc/$Target/maps"
        $savedRange = '{0:x}-{1:x} r-xp' -f $Ours.Start, $Ours.End
        @($maps | Where-Object { $_.StartsWith($savedRange) }).Count | Should -Be 1
        $live = @($maps | Where-Object { $_ -match '\[vdso\]$' })
        $live.Count | Should -Be 1
        $live[0] | Should -Not -Match "^$('{0:x}' -f $Ours.Start)-"
    }

    It 'answers clock_gettime, gettimeofday, time and getcpu through the proxy, then and 2 s later' {
        Invoke-SelfCheck $Target $Log | Should -Be "OK vdso pid=$Target"
        Start-Sleep -Seconds 2
        Invoke-SelfCheck $Target $Log | Should -Be "OK vdso pid=$Target"
    }

    It 'is checkpointed and restored again with its proxy, which still leads to this kernel''s vDSO' {
        $again = Join-Path $TestDrive 'again'
        Checkpoint-Process -Id $Target -ImagePath $again | Out-Null
        Wait-Until { -not (Test-ProcessAlive $Target) } 'the checkpointed target to end'
        Restore-Process -ImagePath $again | Out-Null
        Get-Content (Join-Path $again 'restore.log') -Raw | Should -Not -Match 'becomes a proxy' -Because 'this kernel''s vDSO was saved where it was parked'
        Invoke-SelfCheck $Target $Log | Should -Be "OK vdso pid=$Target"
        Invoke-SelfCheck $Target $Log 'TERM' | Should -Be "OK vdso pid=$Target"
        Wait-Until { -not (Test-ProcessAlive $Target) } 'the restored target to exit'
    }
}
