# Verified images: every checkpoint records the digests of its files (criups-digests.img), and a damaged, truncated
# or altered image is refused before anything is created, naming the file; Test-CheckpointImage says the same
# without restoring; images without digests (CRIU's) still restore; a page server refuses a file damaged on its way.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Restore = 'CriuPS.Cmdlets.RestoreProcessCommand'
    $script:LazyMem = Get-TestTarget 'lazymem'

    # One checkpoint of a self-checking program (it ends): the damage cases each work on a copy of it.
    $work = Join-Path $TestDrive 'selfcheck'
    $script:Log = Join-Path $work 'selfcheck.log'
    $script:Target = Start-TestTarget -Program (Get-TestTarget 'selfcheck') -Arguments 'sleep', $work -WorkDirectory $work
    $script:Original = Join-Path $TestDrive 'original'
    $script:Image = Checkpoint-Process -Id $Target -ImagePath $Original
    Wait-Until { -not (Test-ProcessAlive $Target) } 'the checkpointed process to end'

    function Copy-Image([string]$Name) {
        $copy = Join-Path $TestDrive $Name
        Copy-Item -Recurse $Original $copy
        $copy
    }

    # The offsets of the entries of an image file: a u32 length, then the message, after the 8-byte header.
    function Get-EntryOffsets([string]$Path) {
        $bytes = [IO.File]::ReadAllBytes($Path)
        for ($offset = 8; $offset -lt $bytes.Length; $offset += 4 + [BitConverter]::ToUInt32($bytes, $offset)) { $offset }
    }

    # The protobuf varint encoding of a value, as a register is stored in core-PID.img.
    function ConvertTo-Varint([uint64]$Value) {
        $out = [System.Collections.Generic.List[byte]]::new()
        while ($Value -ge 0x80) { $out.Add([byte](($Value -band 0x7f) -bor 0x80)); $Value = $Value -shr 7 }
        $out.Add([byte]$Value)
        , $out.ToArray()
    }

    function Find-Bytes([byte[]]$Haystack, [byte[]]$Needle) {
        for ($i = 0; $i -le $Haystack.Length - $Needle.Length; $i++) {
            $match = $true
            for ($j = 0; $j -lt $Needle.Length -and $match; $j++) { $match = $Haystack[$i + $j] -eq $Needle[$j] }
            if ($match) { return $i }
        }
        throw 'not found'
    }

    # The damage each case does to its copy of the image; returns the file it damaged.
    $script:Damage = @{
        'drop the last entry of pagemap-PID.img' = {
            param($Image)
            $file = Join-Path $Image "pagemap-$Target.img"
            $last = @(Get-EntryOffsets $file)[-1]
            $stream = [IO.File]::OpenWrite($file); try { $stream.SetLength($last) } finally { $stream.Dispose() }
            $file
        }
        'flip a byte of a register in core-PID.img' = {
            param($Image)
            $file = Join-Path $Image "core-$Target.img"
            $ip = [Convert]::ToUInt64((Import-CheckpointImageFile $file).entries[0].thread_info.gpregs.ip, 16)
            $bytes = [IO.File]::ReadAllBytes($file)
            # The instruction pointer one byte off: the image still parses, the process would not survive it.
            $at = Find-Bytes $bytes (ConvertTo-Varint $ip)
            $bytes[$at] = $bytes[$at] -bxor 1
            [IO.File]::WriteAllBytes($file, $bytes)
            $file
        }
        'truncate pages-1.img' = {
            param($Image)
            $file = Join-Path $Image 'pages-1.img'
            $stream = [IO.File]::OpenWrite($file); try { $stream.SetLength($stream.Length - 4096) } finally { $stream.Dispose() }
            $file
        }
        'append junk to mm-PID.img' = {
            param($Image)
            $file = Join-Path $Image "mm-$Target.img"
            [IO.File]::AppendAllText($file, 'junk')
            $file
        }
        'delete fs-PID.img' = {
            param($Image)
            $file = Join-Path $Image "fs-$Target.img"
            Remove-Item $file
            $file
        }
        'add an image file the checkpoint did not write' = {
            param($Image)
            $file = Join-Path $Image 'core-99999.img'
            Copy-Item (Join-Path $Image "core-$Target.img") $file
            $file
        }
    }
}

AfterAll { Stop-TestProcesses }

Describe 'Restore-Process and Test-CheckpointImage on damaged images' {
    AfterEach { Stop-TestProcesses }

    It 'records the digest of every image file as the checkpoint writes them' {
        $Image.HasDigests | Should -BeTrue
        $digests = Import-CheckpointImageFile (Join-Path $Original 'criups-digests.img')
        $digests.magic | Should -Be 'CRIUPS_DIGESTS'
        $listed = @($digests.entries.name)
        $images = @(Get-ChildItem $Original -File | Where-Object Name -NotIn 'criups-digests.img', 'stats-dump', 'dump.log').Name
        $listed | Sort-Object | Should -Be ($images | Sort-Object)
        foreach ($entry in $digests.entries) {
            [long]$entry.size | Should -Be (Get-Item (Join-Path $Original $entry.name)).Length -Because $entry.name
        }
        Join-Path $Original 'dump.log' | Should -FileContentMatch 'criups-digests.img: digests of \d+ files'
        Join-Path $Original 'dump.log' | Should -FileContentMatch 'the page writer worked [\d.]+ ms, the reader read [\d.]+ ms and waited [\d.]+ ms'
    }

    It 'refuses to restore when it has to <Case>, naming the file, and creates nothing' -ForEach @(
        @{ Case = 'drop the last entry of pagemap-PID.img'; Problem = 'truncated: \d+ bytes, but \d+ were written' }
        @{ Case = 'flip a byte of a register in core-PID.img'; Problem = 'damaged: bytes 0 to \d+ \(block 1 of 1\) differ from what was written' }
        @{ Case = 'truncate pages-1.img'; Problem = 'truncated: \d+ bytes, but \d+ were written' }
        @{ Case = 'append junk to mm-PID.img'; Problem = '\d+ bytes, but \d+ were written \(something was added\)' }
        @{ Case = 'delete fs-PID.img'; Problem = 'missing: the checkpoint wrote it' }
        @{ Case = 'add an image file the checkpoint did not write'; Problem = 'not written by the checkpoint: criups-digests.img does not list it' }
    ) {
        $copy = Copy-Image ($Case -replace '\W+', '-')
        $file = & $Damage[$Case] $copy

        { Restore-Process -ImagePath $copy -ErrorAction Stop } | Should -Throw -ErrorId "ImageCorrupt,$Restore"
        Restore-Process -ImagePath $copy -ErrorVariable failed -ErrorAction SilentlyContinue
        $failed[0].TargetObject | Should -Be $file
        $failed[0].Exception.Message | Should -Match ([regex]::Escape("${file}: ") + $Problem)
        $failed[0].Exception.Message | Should -Match 'Nothing was restored'
        Test-Path "/proc/$Target" | Should -BeFalse -Because 'nothing was created: the PID is free'
        Test-Path (Join-Path $copy 'restore.log') | Should -BeFalse

        $result = Test-CheckpointImage $copy
        $result.Intact | Should -BeFalse
        $result.HasDigests | Should -BeTrue
        @($result.Problems).Count | Should -Be 1
        $found = $result.Problems[0]
        $found.Path | Should -Be $file
        $found.File | Should -Be (Split-Path $file -Leaf)
        $found.Problem | Should -Match "^$Problem"
        Test-CheckpointImage -LiteralPath $copy -Quiet | Should -BeFalse
    }

    It 'restores an untouched image, which verifies itself, after saying it is intact' {
        $result = Test-CheckpointImage $Original
        $result.Intact | Should -BeTrue
        $result.Problems | Should -BeNullOrEmpty
        $result.Directories | Should -Be @($Original)
        $result.FileCount | Should -Be @(Get-ChildItem $Original -Filter '*.img' | Where-Object Name -NE 'criups-digests.img').Count
        $result.Bytes | Should -BeGreaterThan 24MB
        Get-CheckpointImage $Original | Test-CheckpointImage -Quiet | Should -BeTrue

        $restored = Restore-Process -ImagePath $Original
        Register-TestProcess $restored.Id
        $restored.Id | Should -Be $Target
        $restored.VerifyTime | Should -BeGreaterThan ([TimeSpan]::Zero)
        $restored.VerifyTime | Should -BeLessOrEqual $restored.RestoreTime -Because 'the pages are verified beside the restore, within it'
        Invoke-SelfCheck $Target $Log | Should -Match "^OK counter=\d+ pid=$Target$"
        Join-Path $Original 'restore.log' | Should -FileContentMatch "$([regex]::Escape($Original)): \d+ files \(\d+ MiB\) verified against criups-digests.img"
    }

    It 'restores an image without digests as CRIU''s are restored: unverified, and says so' {
        $copy = Copy-Image 'no-digests'
        Remove-Item (Join-Path $copy 'criups-digests.img')
        (Get-CheckpointImage $copy).HasDigests | Should -BeFalse
        $result = Test-CheckpointImage $copy
        $result.HasDigests | Should -BeFalse
        $result.Intact | Should -BeFalse
        $result.Problems | Should -BeNullOrEmpty
        $result.Unverified | Should -Be @($copy)
        Test-CheckpointImage $copy -Quiet | Should -BeFalse

        $restored = Restore-Process -ImagePath $copy
        Register-TestProcess $restored.Id
        Invoke-SelfCheck $Target $Log | Should -Match "^OK counter=\d+ pid=$Target$"
        Join-Path $copy 'restore.log' | Should -FileContentMatch 'has no criups-digests.img .*: restored unverified'
    }

    It 're-records the digest of a file Export-CheckpointImageFile writes into the image, which then restores' {
        $copy = Copy-Image 'edited'
        $inventory = Join-Path $copy 'inventory.img'
        $before = [IO.File]::ReadAllBytes($inventory)
        $beforeText = [Convert]::ToBase64String($before)
        $edited = Import-CheckpointImageFile $inventory
        $edited.entries[0].criups_created_at = [uint64]$edited.entries[0].criups_created_at + 1
        $verbose = $edited | Export-CheckpointImageFile $inventory -Force -Verbose 4>&1
        @($verbose.Message) -match 'Recorded the digest of .*inventory.img' | Should -HaveCount 1
        [Convert]::ToBase64String([IO.File]::ReadAllBytes($inventory)) | Should -Not -Be $beforeText
        Test-CheckpointImage $copy -Quiet | Should -BeTrue
        $restored = Restore-Process -ImagePath $copy
        Register-TestProcess $restored.Id
        Invoke-SelfCheck $Target $Log | Should -Match "^OK counter=\d+ pid=$Target$"

        # The same file changed behind CriuPS's back is damage.
        [IO.File]::WriteAllBytes($inventory, $before)
        (Test-CheckpointImage $copy).Problems.File | Should -Be 'inventory.img'
    }

    # The pages files' blocks are checked beside the restore's own work: a damaged one is found once the process is
    # made and filled, and the restore kills it before it ever runs.
    It 'refuses to let a process run from a pages-1.img with one bit flipped, naming the file, and leaves nothing' {
        $copy = Copy-Image 'flip-pages'
        Remove-Item (Join-Path $copy 'restore.log') -ErrorAction Ignore # an earlier restore of the original's
        $file = Join-Path $copy 'pages-1.img'
        $bytes = [IO.File]::ReadAllBytes($file)
        $bytes[$bytes.Length / 2] = $bytes[$bytes.Length / 2] -bxor 0x10
        [IO.File]::WriteAllBytes($file, $bytes)

        Restore-Process -ImagePath $copy -ErrorVariable failed -ErrorAction SilentlyContinue
        $failed[0].FullyQualifiedErrorId | Should -Be "ImageCorrupt,$Restore"
        $failed[0].TargetObject | Should -Be $file
        $failed[0].Exception.Message | Should -Match ([regex]::Escape("${file}: ") + 'damaged: bytes \d+ to \d+ \(block \d+ of \d+\) differ from what was written')
        $failed[0].Exception.Message | Should -Match 'Nothing was restored'
        Test-Path "/proc/$Target" | Should -BeFalse -Because 'the process made from the image was killed before it ran'
        @(Get-RestoreHosts) | Should -BeNullOrEmpty
        $log = Get-Content (Join-Path $copy 'restore.log')
        @($log) -match 'restore step: page digests' | Should -Not -BeNullOrEmpty
        @($log) -match 'restore step: final state' | Should -BeNullOrEmpty -Because 'nothing of the process ran'
    }

    It 'checks the parent images an incremental checkpoint reads pages from' {
        $work = Join-Path $TestDrive 'chain'
        $log = Join-Path $work 'lazymem.log'
        $target = Start-TestTarget -Program $LazyMem -Arguments '16', $log -WorkDirectory $work
        $pre = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'chain-pre') -PreDump
        $final = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'chain-final') -ParentImage $pre
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        $pre.HasDigests | Should -BeTrue
        $final.ParentMemoryBytes | Should -BeGreaterThan 8MB
        (Test-CheckpointImage $final.Path).Directories | Should -Be @($final.Path, $pre.Path)

        $parentPages = Join-Path $pre.Path 'pages-1.img'
        $bytes = [IO.File]::ReadAllBytes($parentPages)
        $bytes[$bytes.Length / 2] = $bytes[$bytes.Length / 2] -bxor 0x80
        [IO.File]::WriteAllBytes($parentPages, $bytes)
        (Test-CheckpointImage $final.Path).Problems.Path | Should -Be $parentPages
        Restore-Process -ImagePath $final.Path -ErrorVariable failed -ErrorAction SilentlyContinue
        $failed[0].FullyQualifiedErrorId | Should -Be "ImageCorrupt,$Restore"
        $failed[0].TargetObject | Should -Be $parentPages
        Test-Path "/proc/$target" | Should -BeFalse
    }
}

Describe 'Restore-Process -LazyPages on a damaged image' {
    BeforeAll {
        # A lazymem image whose pages-1.img has one bit flipped in its middle (in the big lazily restored area).
        function New-DamagedLazyImage([string]$Name) {
            $work = Join-Path $TestDrive $Name
            $log = Join-Path $work 'lazymem.log'
            $target = Start-TestTarget -Program $LazyMem -Arguments '64', $log -WorkDirectory $work
            $image = Join-Path $TestDrive "$Name-image"
            Checkpoint-Process -Id $target -ImagePath $image | Out-Null
            Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
            $pages = Join-Path $image 'pages-1.img'
            $bytes = [IO.File]::ReadAllBytes($pages)
            $bytes[$bytes.Length / 2] = $bytes[$bytes.Length / 2] -bxor 0x80
            [IO.File]::WriteAllBytes($pages, $bytes)
            @{ Id = $target; Image = $image; Pages = $pages }
        }
    }
    AfterEach { Stop-TestProcesses }

    It 'verifies the pages as they arrive, and kills the process with ImageCorrupt naming the file' {
        $t = New-DamagedLazyImage 'lazy'
        $target, $image, $pages = $t.Id, $t.Image, $t.Pages

        # Up front, all but the pages: the process runs, and its pages are checked block by block as they come.
        $restored = Restore-Process -ImagePath $image -LazyPages
        Register-TestProcess $restored.Id
        $lazy = $restored | Wait-LazyRestore -Timeout 60 -ErrorVariable failed -ErrorAction SilentlyContinue
        $lazy.State | Should -Be 'Failed'
        $failed[0].FullyQualifiedErrorId | Should -Be 'ImageCorrupt,CriuPS.Cmdlets.WaitLazyRestoreCommand'
        $failed[0].Exception.Message | Should -Match "the process was killed rather than left to run without its memory: $([regex]::Escape($pages)) is not as its checkpoint wrote it: damaged: bytes \d+ to \d+"
        Wait-Until { -not (Test-ProcessAlive $target) } 'the restored process to be killed'
        Join-Path $image 'restore.log' | Should -FileContentMatch 'their blocks as they are read'
    }

    It 'gets no damaged page from a page server either: it refuses to serve it, and the process is killed' {
        $t = New-DamagedLazyImage 'lazy-served'
        $server = Start-LazyPageServer -ImagePath $t.Image
        try {
            $restored = Restore-Process -ImagePath $t.Image -LazyPages -PageServer "127.0.0.1:$($server.Port)"
            Register-TestProcess $restored.Id
            $lazy = $restored | Wait-LazyRestore -Timeout 60 -ErrorVariable failed -ErrorAction SilentlyContinue
            $lazy.State | Should -Be 'Failed'
            $failed[0].FullyQualifiedErrorId | Should -Be 'ImageCorrupt,CriuPS.Cmdlets.WaitLazyRestoreCommand'
            $failed[0].Exception.Message | Should -Match "found image files damaged: $([regex]::Escape($t.Pages)) is not as its checkpoint wrote it: damaged: bytes \d+ to \d+"
            Wait-Until { -not (Test-ProcessAlive $t.Id) } 'the restored process to be killed'
            $server.Error.InnerException.Kind | Should -Be 'ImageCorrupt'
        }
        finally { $server | Stop-LazyPageServer }
    }
}

Describe 'A checkpoint sent to a page server' {
    AfterEach { Stop-TestProcesses }

    It 'is refused when a file arrives damaged, and the process runs on as it was' {
        $work = Join-Path $TestDrive 'sent'
        $log = Join-Path $work 'lazymem.log'
        $target = Start-TestTarget -Program $LazyMem -Arguments '16', $log -WorkDirectory $work
        $received = Join-Path $TestDrive 'received'
        $server = Start-LazyPageServer -ImagePath $received
        try {
            # A test hook flips one bit of pages-1.img after the client digested it, as a faulty link would.
            $env:CRIUPS_FAIL_AT = 'damage-in-flight'
            try { Checkpoint-Process -Id $target -PageServer "127.0.0.1:$($server.Port)" -ErrorVariable failed -ErrorAction SilentlyContinue }
            finally { $env:CRIUPS_FAIL_AT = $null }
            $failed[0].FullyQualifiedErrorId | Should -Be 'ImageCorrupt,CriuPS.Cmdlets.CheckpointProcessCommand'
            $failed[0].Exception.Message | Should -Match 'found image files damaged: pages-1.img arrived damaged: bytes \d+ to \d+'
            Invoke-SelfCheck $target $log 'USR1' | Should -Be "OK pid=$target"
            Test-Path $received | Should -BeFalse -Because 'nothing damaged is kept'
            @(Get-ChildItem $TestDrive -Force -Filter '.received*') | Should -BeNullOrEmpty
            $server.Error.Kind | Should -Be 'PageServerUnavailable'
            $server.Error.Message | Should -Match 'pages-1.img arrived damaged'

            # The next checkpoint arrives whole, verified.
            Wait-Until { $server.State -eq 'Listening' } 'the server to listen again'
            $sent = Checkpoint-Process -Id $target -PageServer "127.0.0.1:$($server.Port)"
            $sent.Path | Should -Be $received
            Test-CheckpointImage $received -Quiet | Should -BeTrue
        }
        finally { $server | Stop-LazyPageServer }
    }
}
