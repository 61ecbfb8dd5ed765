# Issue 14's proof: a runc container (Debian's runc) whose root file system is busybox-static, running busybox httpd
# as its init (PID 1 of its PID namespace) with its own hostname, /proc, a tmpfs holding the data it serves, a
# network namespace whose veth is reached from the host, and memory cgroups with a limit, is checkpointed, deleted
# with runc (its cgroups go with it), and restored from the image: it serves the tmpfs's data through the veth again,
# with the same hostname, /proc/1/cmdline in its PID namespace, tmpfs contents and memory limit, in a mount namespace
# made again as runc made it (its /dev tmpfs with device nodes, devpts, masked and read-only paths, ro sysfs, the
# tmpfs at /sys/fs/cgroup with its bound cgroups). runc and busybox-static come from build.ps1's $TestPackages.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    foreach ($tool in 'runc', 'nsenter', 'ip') {
        if (-not (Get-Command $tool -CommandType Application -ErrorAction Ignore)) { throw "$tool is missing: run build.ps1, which installs the test packages (runc, busybox-static, iproute2)" }
    }
    $script:Busybox = '/bin/busybox'
    if (-not (Test-Path $Busybox)) { throw "$Busybox is missing: run build.ps1, which installs busybox-static" }
    $script:Nsenter = (Get-Command nsenter -CommandType Application | Select-Object -First 1).Source

    $script:Name = "criups-test-$PID"
    $script:Bundle = Join-Path $TestDrive 'bundle'
    $script:State = Join-Path $TestDrive 'runc-state'
    $script:CgroupPath = "/criups-test-runc-$PID"
    $script:Namespace = "criups-runc-$PID"
    $script:Outer = "crr$PID"
    $net = $PID % 250 + 1
    $script:HostAddress = "10.234.$net.1"
    $script:ContainerAddress = "10.234.$net.2"
    $script:Data = "tmpfs data of $PID"

    function Invoke-Tool([string]$Tool) {
        $out = & $Tool @args 2>&1
        if ($LASTEXITCODE -ne 0) { throw "$Tool $args failed: $out" }
        $out
    }

    # The root file system: busybox-static as /bin/busybox and a link per applet, as `busybox --install -s` makes them.
    $rootfs = Join-Path $Bundle 'rootfs'
    foreach ($dir in 'bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'data') { New-Item -ItemType Directory -Force (Join-Path $rootfs $dir) | Out-Null }
    Copy-Item $Busybox (Join-Path $rootfs 'bin/busybox')
    foreach ($applet in (& $Busybox --list) | Where-Object { $_ -ne 'busybox' }) {
        New-Item -ItemType SymbolicLink -Path (Join-Path $rootfs "bin/$applet") -Target busybox | Out-Null
    }
    Set-Content (Join-Path $rootfs 'etc/hostname') 'criups-box'

    # The network namespace runc puts the container in (config.json's path): a veth, its outer end on the host.
    Invoke-Tool ip netns add $Namespace | Out-Null
    Invoke-Tool ip link add $Outer type veth peer name eth0 netns $Namespace | Out-Null
    Invoke-Tool ip addr add "$HostAddress/30" dev $Outer | Out-Null
    Invoke-Tool ip link set $Outer up | Out-Null
    Invoke-Tool ip -n $Namespace link set lo up | Out-Null
    Invoke-Tool ip -n $Namespace addr add "$ContainerAddress/30" dev eth0 | Out-Null
    Invoke-Tool ip -n $Namespace link set eth0 up | Out-Null

    # config.json from `runc spec`: the service is the container's init (exec keeps PID 1), serving the tmpfs /data.
    Invoke-Tool runc spec --bundle $Bundle | Out-Null
    $config = Get-Content (Join-Path $Bundle 'config.json') -Raw | ConvertFrom-Json
    $config.root.path = $rootfs
    $config.root.readonly = $false
    $config.process.terminal = $false
    $config.process.args = @('/bin/sh', '-c', "echo '$Data' > /data/x && exec /bin/busybox httpd -f -p 8080 -h /data")
    $config.hostname = 'criups-box'
    $config.mounts += [pscustomobject]@{ destination = '/data'; type = 'tmpfs'; source = 'tmpfs'; options = @('nosuid', 'size=1m', 'mode=755') }
    ($config.linux.namespaces | Where-Object type -EQ 'network') | Add-Member -NotePropertyName path -NotePropertyValue "/run/netns/$Namespace" -Force
    $config.linux | Add-Member -NotePropertyName cgroupsPath -NotePropertyValue $CgroupPath -Force
    $config.linux.resources | Add-Member -NotePropertyName memory -NotePropertyValue ([pscustomobject]@{ limit = 64MB }) -Force
    $config | ConvertTo-Json -Depth 32 | Set-Content (Join-Path $Bundle 'config.json')

    # What is served through the veth, from the host's network namespace; null while nothing answers.
    $script:Http = [System.Net.Http.HttpClient]::new(@{ UseProxy = $false } -as [System.Net.Http.HttpClientHandler])
    $Http.Timeout = [TimeSpan]::FromSeconds(5)
    function Get-Served {
        try { $Http.GetStringAsync("http://${ContainerAddress}:8080/x").GetAwaiter().GetResult().Trim() }
        catch { $null }
    }

    # What the container shows of itself: run inside its namespaces with nsenter.
    function Get-ContainerView([int]$Id) {
        [pscustomobject]@{
            Hostname = (& $Nsenter -t $Id -u hostname).Trim()
            Cmdline = ((& $Nsenter -t $Id -p -m cat /proc/1/cmdline) -join '') -replace "`0", ' '
            TmpfsData = ((& $Nsenter -t $Id -m cat /data/x) -join "`n").Trim()
            MemoryCgroup = (Get-Content "/proc/$Id/cgroup" | Where-Object { $_ -match '^\d+:memory:' }) -replace '^\d+:memory:', ''
            DevNull = (& $Nsenter -t $Id -m stat -c '%F %t:%T' /dev/null)
            Mounts = @(Get-Content "/proc/$Id/mountinfo" | ForEach-Object { $f = $_.Split(' '); $t = $f[([array]::IndexOf($f, '-') + 1)]; "$($f[4]) $t $($f[3])" } | Sort-Object)
        }
    }
}

AfterAll {
    $Http.Dispose()
    Stop-TestProcesses
    & runc --root $State delete -f $Name 2>$null
    foreach ($cgroup in Get-ChildItem -Directory "/sys/fs/cgroup/*$CgroupPath", "/sys/fs/cgroup/*/*$CgroupPath" -ErrorAction Ignore) {
        [System.IO.Directory]::Delete($cgroup.FullName)
    }
    & ip netns del $Namespace 2>$null
    & ip link del $Outer 2>$null
}

Describe 'A runc container with a busybox root' {
    It 'is checkpointed, deleted with runc and restored: it serves its tmpfs through its veth, with its hostname, PID 1, tmpfs and memory limit' {
        $log = Join-Path $TestDrive 'runc.log'
        $pidFile = Join-Path $TestDrive 'container.pid'
        # Detached: the container's init is the service; its output goes to a file, not to a pipe of PowerShell's.
        & /bin/sh -c "exec runc --root '$State' run -d --bundle '$Bundle' --pid-file '$pidFile' '$Name' >'$log' 2>&1 </dev/null"
        $LASTEXITCODE | Should -Be 0 -Because (Get-Content $log -Raw)
        $init = [int](Get-Content $pidFile -Raw)
        Register-TestProcess $init
        Wait-Until { (Get-Served) -eq $Data } 'the container to serve /data/x' 30
        $before = Get-ContainerView $init
        $before.Hostname | Should -Be 'criups-box'
        $before.Cmdline | Should -Match '^/bin/busybox httpd -f -p 8080 -h /data'
        $before.TmpfsData | Should -Be $Data
        $before.MemoryCgroup | Should -Be $CgroupPath
        $limit = Get-Content "/sys/fs/cgroup/memory$CgroupPath/memory.limit_in_bytes"
        $limit | Should -Be (64MB).ToString()

        $image = Join-Path $TestDrive 'img'
        $saved = Checkpoint-Process -Id $init -ImagePath $image -ErrorAction Stop
        Test-ProcessAlive $init | Should -BeFalse -Because 'a checkpoint without -LeaveRunning ends the process'
        Invoke-Tool runc --root $State delete -f $Name | Out-Null
        Test-Path "/sys/fs/cgroup/memory$CgroupPath" | Should -BeFalse -Because 'runc delete removed the container''s cgroups'
        Get-Served | Should -BeNullOrEmpty

        # The namespace runc was given is joined again (as criu restore --join-ns); runc no longer knows the container.
        $restored = Restore-Process -ImagePath $image -NetworkNamespace "/run/netns/$Namespace" -ErrorAction Stop
        Register-TestProcess $restored.Id
        $restored.NamespacePid | Should -Be 1
        $mounts = @(Get-Content "/proc/$($restored.Id)/mountinfo").Count
        Write-Host "    frozen $([int]$saved.FrozenTime.TotalMilliseconds) ms, restore $([int]$restored.RestoreTime.TotalMilliseconds) ms ($mounts mounts made again)"
        Wait-Until { (Get-Served) -eq $Data } 'the restored container to serve /data/x' 30
        $after = Get-ContainerView $restored.Id
        $after.Hostname | Should -Be $before.Hostname
        $after.Cmdline | Should -Be $before.Cmdline
        $after.TmpfsData | Should -Be $before.TmpfsData
        $after.MemoryCgroup | Should -Be $before.MemoryCgroup
        $after.DevNull | Should -Be $before.DevNull
        Get-Content "/sys/fs/cgroup/memory$CgroupPath/memory.limit_in_bytes" | Should -Be $limit
        # Every mount runc made is back at its place, of its type, showing the same part of its filesystem.
        $after.Mounts | Should -Be $before.Mounts
        (Get-Item "/proc/$($restored.Id)/exe").LinkTarget | Should -Be '/bin/busybox'
    }
}
