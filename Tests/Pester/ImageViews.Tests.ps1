# Get-CheckpointImage -View: crit's explorers (crit x ps, fds, mems, rss) as objects, on CRIU's images and CriuPS's.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $interop = Get-SharedInterop
    $script:Static = Join-Path $interop 'criu-4.2/counter-static/images'
    $script:StaticPid = [int](Get-Content (Join-Path $interop 'criu-4.2/counter-static/pid.txt') -Raw)
    $script:Dyn = Join-Path $interop 'criu-4.2/counter-dyn/images'
    $script:DynPid = [int](Get-Content (Join-Path $interop 'criu-4.2/counter-dyn/pid.txt') -Raw)

    $work = Join-Path $TestDrive 'tree'
    $script:TreeRoot = Start-TestTarget -Program (Get-TestTarget 'tree') -Arguments $work -WorkDirectory $work
    $script:TreeImage = Checkpoint-Process -Id $TreeRoot -ImagePath (Join-Path $TestDrive 'tree-image') -LeaveRunning -ErrorAction Stop
}

AfterAll { Stop-TestProcesses }

Describe 'Get-CheckpointImage -View' {
    It 'returns the CheckpointImage by default and with -View Image' {
        (Get-CheckpointImage $Static) | Should -BeOfType [CriuPS.Engine.Model.CheckpointImage]
        (Get-CheckpointImage $Static -View Image) | Should -BeOfType [CriuPS.Engine.Model.CheckpointImage]
    }

    It 'Tree lists a CRIU image''s process as crit x ps does' {
        $tree = @(Get-CheckpointImage $Static -View Tree)
        $tree.Count | Should -Be 1
        $tree[0] | Should -BeOfType [CriuPS.Engine.Model.Views.ImageTreeNode]
        $tree[0].Id, $tree[0].ProcessGroupId, $tree[0].SessionId | Should -Be @($StaticPid, $StaticPid, $StaticPid)
        $tree[0].Name | Should -Be 'counter-static'
        $tree[0].State | Should -Be 'running'
        $tree[0].Depth | Should -Be 0
        $tree[0].ImagePath | Should -Be $Static
    }

    It 'Tree lists a saved tree depth-first, with its zombie and its stopped process' {
        $tree = @(Get-CheckpointImage $TreeImage.Path -View Tree)
        $tree.Count | Should -Be 10
        $tree[0].Id | Should -Be $TreeRoot
        $tree[0].Depth | Should -Be 0
        @($tree | Where-Object State -EQ 'zombie').Count | Should -Be 1
        @($tree | Where-Object State -EQ 'stopped').Count | Should -Be 1
        ($tree | Where-Object State -EQ 'zombie').ThreadCount | Should -Be 0
        # The session leader's two children are the only grandchildren of the root, and come right after it.
        $grandchildren = @($tree | Where-Object Depth -EQ 2)
        $grandchildren.Count | Should -Be 2
        $leader = $tree | Where-Object { $_.Id -eq $grandchildren[0].ParentId }
        $leader.SessionId | Should -Be $leader.Id
        [array]::IndexOf($tree, $grandchildren[0]) | Should -Be ([array]::IndexOf($tree, $leader) + 1)
        foreach ($node in $tree | Select-Object -Skip 1) {
            ($tree | Where-Object Id -EQ $node.ParentId).Depth | Should -Be ($node.Depth - 1)
        }
    }

    It 'Files lists descriptors, then cwd, root and exe, as crit x fds does' {
        $files = @(Get-CheckpointImage $Dyn -View Files)
        $files[0] | Should -BeOfType [CriuPS.Engine.Model.Views.ImageOpenFile]
        $files.Fd | Should -Be @('0', '1', '2', '3', '4', '5', '10', '251', 'cwd', 'root', 'exe')
        $files.Target | Should -Be @('/dev/null', '/dev/null', '/dev/null', '/tmp/criups-interop/dyn.log', 'pipe[231663]', 'pipe[231663]',
            '/dev/null', 'pipe[231582]', '/tmp/criups-interop', '/', '/tmp/criups-interop/counter-dyn')
        ($files | Where-Object Fd -EQ 4).Type | Should -Be 'PIPE'
        ($files | Where-Object Fd -EQ 3).Type | Should -Be 'REG'
        $files.ProcessId | Sort-Object -Unique | Should -Be $DynPid
    }

    It 'Files covers every process of a saved tree, pipes by inode' {
        $files = @(Get-CheckpointImage $TreeImage.Path -View Files)
        ($files.ProcessId | Sort-Object -Unique).Count | Should -Be 9 -Because 'the zombie holds no files'
        @($files | Where-Object Type -EQ 'PIPE').Target | ForEach-Object { $_ | Should -Match '^pipe\[\d+\]$' }
        @($files | Where-Object Fd -EQ 'cwd').Count | Should -Be 9
    }

    It 'Memory lists every memory area with what crit x mems says it maps' {
        $memory = @(Get-CheckpointImage $Static -View Memory)
        $memory[0] | Should -BeOfType [CriuPS.Engine.Model.Views.ImageMapping]
        $exe = '/tmp/criups-interop/counter-static'
        $memory.Mapping | Should -Be @($exe, "$exe + 0x1000", "$exe + 0x7b000", "$exe + 0xa2000", "$exe + 0xa6000",
            '', '', '', '', '', '', '[vdso]', '[stack?]', '[vsyscall] *')
        ($memory | ForEach-Object { $_.Protection.Substring(0, 3) }) | Should -Be @('r--', 'r-x', 'r--', 'r--', 'rw-', 'rw-', 'rw-', 'rw-', 'rw-', 'r--', 'r--', 'r-x', 'rw-', '--x')
        '{0:x}-{1:x}' -f $memory[1].Start, $memory[1].End | Should -Be '401000-47b000'
        $memory[1].Size | Should -Be 0x7a000
        $memory[1].Kind | Should -Be 'file'
    }

    It 'Pages tells how many pages of each memory area the image holds, as crit x rss does' {
        $pages = @(Get-CheckpointImage $Static -View Pages)
        $pages[0] | Should -BeOfType [CriuPS.Engine.Model.Views.ImageResidentPages]
        $pages.Count | Should -Be 14
        $byStart = @{}
        $pages | ForEach-Object { $byStart['{0:x}' -f $_.Start] = $_ }
        $byStart['401000'].Pages, $byStart['401000'].ResidentPages | Should -Be @(122, 1)
        $byStart['4a3000'].ResidentPages | Should -Be 2 -Because 'the run at 4a5000 covers its last two pages'
        $byStart['4a7000'].ResidentPages | Should -Be 3
        $byStart['4aa000'].ResidentPages, $byStart['4aa000'].Runs | Should -Be @(4, 2)
        $byStart['7fe04b600000'].Pages, $byStart['7fe04b600000'].ResidentPages, $byStart['7fe04b600000'].Runs | Should -Be @(4096, 4096, 17)
        $byStart['7fe04c76e000'].Mapping | Should -Be '[vdso]'
        $byStart['400000'].ResidentPages | Should -Be 0
        ($pages | Measure-Object ResidentPages -Sum).Sum | Should -Be (Get-CheckpointImage $Static).Pages
        ($pages | Measure-Object ParentPages -Sum).Sum | Should -Be 0
    }

    It 'Pages agrees with the saved bytes of the image for CriuPS''s own images' {
        $pages = @(Get-CheckpointImage $TreeImage.Path -View Pages)
        ($pages | Measure-Object ResidentPages -Sum).Sum | Should -Be $TreeImage.Pages
    }

    It 'reads several images from the pipeline, saying which each object comes from' {
        $tree = @($Static, $Dyn | Get-CheckpointImage -View Tree)
        $tree.ImagePath | Should -Be @($Static, $Dyn)
    }
}
