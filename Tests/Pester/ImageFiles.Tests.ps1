# Import-CheckpointImageFile and Export-CheckpointImageFile: crit's JSON form of single image files, and back to the
# very same bytes, for CRIU's images (the interop vectors) and CriuPS's own.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $interop = Get-SharedInterop
    $script:VectorFiles = @(Get-ChildItem (Join-Path $interop 'criu-4.2/*/images/*') -File | Where-Object Name -NE 'dump.log' | ForEach-Object {
            @{ Vector = $_.Directory.Parent.Name; Name = $_.Name; Path = $_.FullName }
        })
    $critJson = Join-Path (Get-RepositoryRoot) 'Tests/CriuPS.Engine.Tests/Images/CritJson'
    $script:CritFiles = @(Get-ChildItem $critJson -Recurse -Filter '*.json' | ForEach-Object {
            @{ Vector = $_.Directory.Name; Name = $_.BaseName; Json = $_.FullName; Path = Join-Path $interop "criu-4.2/$($_.Directory.Name)/images/$($_.BaseName)" }
        })
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Interop = Get-SharedInterop
    $script:Dyn = Join-Path $Interop 'criu-4.2/counter-dyn/images'
    $script:DynPid = (Get-Content (Join-Path $Interop 'criu-4.2/counter-dyn/pid.txt') -Raw).Trim()

    # Import, render as JSON text, read the text back and export: what a person editing an image as JSON does.
    function Invoke-JsonRoundTrip([string]$Path, [string]$Destination) {
        $json = Import-CheckpointImageFile -LiteralPath $Path -ErrorAction Stop | ConvertTo-Json -Depth 32
        $json | ConvertFrom-Json -DateKind String | Export-CheckpointImageFile -Path $Destination -ErrorAction Stop
        $json
    }
}

AfterAll { Stop-TestProcesses }

Describe 'Import-CheckpointImageFile' {
    It 'renders <Vector>/<Name> with ConvertTo-Json as crit decode --pretty does' -ForEach $CritFiles {
        $ours = Import-CheckpointImageFile -LiteralPath $Path | ConvertTo-Json -Depth 32 | ConvertFrom-Json -DateKind String
        $crits = Get-Content -Raw $Json | ConvertFrom-Json -DateKind String
        # Both read back the same way and written compactly: equal text means the same keys, order and values.
        ($ours | ConvertTo-Json -Depth 32 -Compress) | Should -BeExactly ($crits | ConvertTo-Json -Depth 32 -Compress)
    }

    It 'gives the JSON shape and value forms of crit' {
        $mm = Import-CheckpointImageFile (Join-Path $Dyn "mm-$DynPid.img")
        @($mm.PSObject.Properties.Name) | Should -Be @('magic', 'entries')
        $mm.magic | Should -BeExactly 'MM'
        $vma = $mm.entries[0].vmas[0]
        $vma.start | Should -Match '^0x[0-9a-f]+$'
        $vma.prot | Should -BeExactly 'PROT_READ'
        $vma.status | Should -BeExactly 'VMA_AREA_REGULAR | VMA_FILE_PRIVATE'
        $mm.entries[0].mm_saved_auxv[0] | Should -BeOfType [long]
        (Import-CheckpointImageFile (Join-Path $Dyn 'pipes-data.img')).entries[0].extra | Should -BeExactly "aGVsbG8gcGlwZQo=`n"
        (Import-CheckpointImageFile (Join-Path $Dyn "core-$DynPid.img")).entries[0].tc.task_state | Should -BeExactly 'Alive'
    }

    It 'shows a raw image as its magic and its bytes in base64' {
        $pages = Import-CheckpointImageFile (Join-Path $Dyn 'pages-1.img')
        @($pages.PSObject.Properties.Name) | Should -Be @('magic', 'extra')
        [Convert]::FromBase64String($pages.extra).Length | Should -Be (Get-Item (Join-Path $Dyn 'pages-1.img')).Length
    }

    It 'reads the image files a wildcard matches, passing over other files, and pipes from Get-ChildItem' {
        $images = Import-CheckpointImageFile (Join-Path $Dyn '*')
        $images.magic | Should -Contain 'INVENTORY'
        $images.Count | Should -Be (@(Get-ChildItem $Dyn -File).Count - 1) -Because 'dump.log is no image'
        @(Get-ChildItem $Dyn -Filter 'p*.img' | Import-CheckpointImageFile).magic | Should -Be @('PAGEMAP', 'PAGES', 'PIPES_DATA', 'PSTREE')
    }

    It 'reports a file that is no image as ImageCorrupt and a missing one as ImageNotFound, and goes on' {
        $found = Import-CheckpointImageFile -LiteralPath (Join-Path $Dyn 'dump.log'), (Join-Path $Dyn 'nothing.img'), (Join-Path $Dyn 'pstree.img') -ErrorVariable errors -ErrorAction SilentlyContinue
        $found.magic | Should -Be 'PSTREE'
        $errors.FullyQualifiedErrorId | Should -Be @('ImageCorrupt,CriuPS.Cmdlets.ImportCheckpointImageFileCommand', 'ImageNotFound,CriuPS.Cmdlets.ImportCheckpointImageFileCommand')
        $errors[0].CategoryInfo.Category | Should -Be 'InvalidData'
        $errors[0].TargetObject | Should -Match 'dump\.log$'
    }
}

Describe 'Export-CheckpointImageFile' {
    It 'gives back the bytes of <Vector>/<Name> through JSON text' -ForEach $VectorFiles {
        $copy = Join-Path $TestDrive "$Vector-$Name"
        Invoke-JsonRoundTrip $Path $copy | Out-Null
        (Get-FileHash $copy).Hash | Should -Be (Get-FileHash $Path).Hash
    }

    Context 'on the images of CriuPS itself' {
        BeforeAll {
            $work = Join-Path $TestDrive 'tree-target'
            $target = Start-TestTarget -Program (Get-TestTarget 'tree') -Arguments $work -WorkDirectory $work
            $script:Own = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'own-image') -LeaveRunning -ErrorAction Stop
        }

        It 'gives back the bytes of every file of a process tree''s image through JSON text' {
            $files = @(Get-ChildItem $Own.Path -File | Where-Object Name -NE 'dump.log')
            $files.Name | Should -Contain 'pstree.img'
            $files.Name | Should -Contain 'pipes-data.img'
            $files.Name | Should -Contain 'cpuinfo.img'
            $different = foreach ($file in $files) {
                $copy = Join-Path $TestDrive "own-$($file.Name)"
                Invoke-JsonRoundTrip $file.FullName $copy | Out-Null
                if ((Get-FileHash $copy).Hash -ne (Get-FileHash $file.FullName).Hash) { $file.Name }
            }
            $different | Should -BeNullOrEmpty
        }
    }

    It 'takes JSON text line by line from the pipeline, and hashtables' {
        $lines = Import-CheckpointImageFile (Join-Path $Dyn 'pstree.img') | ConvertTo-Json -Depth 32
        $fromText = Join-Path $TestDrive 'pstree-text.img'
        $lines -split "`n" | Export-CheckpointImageFile $fromText
        (Get-FileHash $fromText).Hash | Should -Be (Get-FileHash (Join-Path $Dyn 'pstree.img')).Hash

        $fromTable = Join-Path $TestDrive 'pstree-table.img'
        $file = @{ magic = 'PSTREE'; entries = @(@{ pid = 7; ppid = 0; pgid = 7; sid = 7; threads = @(7, 8) }) } |
            Export-CheckpointImageFile $fromTable -PassThru
        $file | Should -BeOfType [System.IO.FileInfo]
        $file.FullName | Should -Be $fromTable
        (Import-CheckpointImageFile $fromTable).entries[0].threads | Should -Be @(7, 8)
    }

    It 'refuses an invalid image, saying where, and writes nothing' {
        $target = Join-Path $TestDrive 'invalid.img'
        $image = [pscustomobject]@{ magic = 'VMAS'; entries = @([pscustomobject]@{ start = '0x1000'; end = '0x2000'; pgoff = 0; shmid = 0; prot = 'PROT_READ | PROT_SING'; flags = 'MAP_PRIVATE'; status = ''; fd = -1 }) }
        $image | Export-CheckpointImageFile $target -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'InvalidImageData,CriuPS.Cmdlets.ExportCheckpointImageFileCommand'
        $errors[0].CategoryInfo.Category | Should -Be 'InvalidData'
        $errors[0].TargetObject | Should -Be 'entries[0].prot'
        $errors[0].ErrorDetails.RecommendedAction | Should -Not -BeNullOrEmpty
        Test-Path $target | Should -BeFalse
    }

    It 'replaces an existing file only with -Force, and writes nothing with -WhatIf' {
        $target = Join-Path $TestDrive 'existing.img'
        Set-Content $target 'precious'
        $image = Import-CheckpointImageFile (Join-Path $Dyn 'pstree.img')
        $image | Export-CheckpointImageFile $target -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be 'ImagePathUnusable,CriuPS.Cmdlets.ExportCheckpointImageFileCommand'
        Get-Content $target | Should -Be 'precious'
        $image | Export-CheckpointImageFile $target -Force -WhatIf
        Get-Content $target | Should -Be 'precious'
        $image | Export-CheckpointImageFile $target -Force
        (Get-FileHash $target).Hash | Should -Be (Get-FileHash (Join-Path $Dyn 'pstree.img')).Hash
    }

    It 'refuses a second image for the same file' {
        $target = Join-Path $TestDrive 'two.img'
        $image = Import-CheckpointImageFile (Join-Path $Dyn 'pstree.img')
        $image, $image | Export-CheckpointImageFile $target -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 1
        $errors[0].Exception.Message | Should -Match 'holds one image'
        (Get-FileHash $target).Hash | Should -Be (Get-FileHash (Join-Path $Dyn 'pstree.img')).Hash
    }
}
