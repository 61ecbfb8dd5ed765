# End to end: deleted files still open or mapped, FIFOs opened by path, and file locks.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Checkpoint = 'CriuPS.Cmdlets.CheckpointProcessCommand'
}

Describe 'Deleted files, FIFOs and file locks' {
    AfterEach { Stop-TestProcesses }

    It 'restores deleted files open and mapped (its own executable too), a FIFO with unread data, and flock, OFD and POSIX locks' {
        $work = Join-Path $TestDrive 'specialfiles'
        $log = Join-Path $work 'specialfiles.log'
        # The program runs from a copy that is deleted once it runs: its executable and code are deleted files too.
        $program = Join-Path $TestDrive 'specialfiles-copy'
        Copy-Item (Get-TestTarget 'specialfiles') $program
        $target = Start-TestTarget -Program $program -Arguments $work -WorkDirectory $work
        Remove-Item $program
        Invoke-SelfCheck $target $log | Should -Match "^OK pid=$target$"
        $pids = Get-ProcessTreeLayout $target | ForEach-Object { [int]$_.Split(' ')[0] }
        $locks = Get-Content /proc/locks | Where-Object { $_ -match "\b($($pids -join '|'))\b" }

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-specialfiles')
        foreach ($name in 'ghost-file-1.img', 'remap-fpath.img', 'filelocks.img', 'fifo-data.img') {
            Test-Path (Join-Path $image.Path $name) | Should -BeTrue -Because "$name holds what the process had"
        }
        ($image.Processes | Where-Object Id -EQ $target).Files | Where-Object Type -EQ 'FIFO' | ForEach-Object Target | Should -Be (Join-Path $work 'fifo')
        foreach ($id in $pids) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id to end" }
        Get-ChildItem $work -Filter 'ghost-*' | Should -BeNullOrEmpty

        Restore-Process $image.Path | Out-Null
        $pids | ForEach-Object { Register-TestProcess $_ }
        Get-ChildItem $work -Filter 'ghost-*' | Should -BeNullOrEmpty -Because 'the deleted files are deleted again'
        Invoke-SelfCheck $target $log 'USR2' | Should -Match "^OK pid=$target$" -Because 'the FIFO gives back its unread line, then carries new ones'
        Invoke-SelfCheck $target $log | Should -Match "^OK pid=$target$"
        (Get-Item "/proc/$target/exe").LinkTarget | Should -Be "$program (deleted)"
        Test-Path $program | Should -BeFalse
        $after = Get-Content /proc/locks | Where-Object { $_ -match "\b($($pids -join '|'))\b" }
        ($after -replace "^\d+:\s*" | Sort-Object) | Should -Be ($locks -replace "^\d+:\s*" | Sort-Object) -Because 'every lock is back, held by the same processes'
    }

    It 'recreates a FIFO node removed since the checkpoint' {
        $work = Join-Path $TestDrive 'specialfiles-nonode'
        $log = Join-Path $work 'specialfiles.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'specialfiles') -Arguments $work -WorkDirectory $work
        $pids = Get-ProcessTreeLayout $target | ForEach-Object { [int]$_.Split(' ')[0] }
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-nonode')
        foreach ($id in $pids) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id to end" }
        Remove-Item (Join-Path $work 'fifo')

        Restore-Process $image.Path -WarningVariable warnings -WarningAction SilentlyContinue | Out-Null
        $pids | ForEach-Object { Register-TestProcess $_ }
        $warnings | Should -Match "fifo' was missing; it was created again with mode 600"
        Get-ModeBits (Join-Path $work 'fifo') | Should -Be '600'
        Invoke-SelfCheck $target $log 'USR2' | Should -Match "^OK pid=$target$"
    }

    It 'refuses <What> before freezing anything' -ForEach @(
        @{ What = 'a lease being broken'; Mode = 'lease'; Message = 'fd \d+: a lease being broken \(BREAKING: an open of the file waits for its holder to give it up\)' }
        @{ What = 'a flock lock whose file only a process outside the tree holds'; Mode = 'outside-lock'; Message = 'a flock write lock on inode \S+ that none of the tree''s descriptors or memory mappings holds' }
        @{ What = 'a deleted file larger than the ghost file limit'; Mode = 'big-ghost'; Message = "fd \d+: open file '.*/big\.dat \(deleted\)' was deleted and takes 2097152 bytes on disk, more than the ghost file limit of 1048576 bytes" }
    ) {
        $work = Join-Path $TestDrive "refused-$Mode"
        $script = Join-Path $TestDrive 'hold.py'
        @'
import fcntl, os, signal, sys, time
mode = sys.argv[1]
with open("locked.dat", "wb") as f:
    f.write(b"x" * 4096)
if mode == "lease":
    signal.signal(signal.SIGIO, signal.SIG_IGN)  # the lease break's signal
    fd = os.open("locked.dat", os.O_RDONLY)
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    if os.fork() == 0:
        os.open("locked.dat", os.O_WRONLY)  # waits for the holder to give the lease up (lease-break-time, 45 s)
        time.sleep(1000)
    while fcntl.fcntl(fd, fcntl.F_GETLEASE) == fcntl.F_RDLCK:  # F_UNLCK, the type it is broken to, once breaking
        time.sleep(0.01)
elif mode == "outside-lock":
    # The lock belongs to the description, which only the parent (not checkpointed) keeps once the child closes it.
    fd = os.open("locked.dat", os.O_RDWR)
    if os.fork() > 0:
        while True:
            time.sleep(1000)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.close(fd)
else:
    fd = os.open("big.dat", os.O_RDWR | os.O_CREAT)
    os.write(fd, os.urandom(2 << 20))
    os.fsync(fd)
    os.unlink("big.dat")
with open("ready.tmp", "w") as r:
    r.write(str(os.getpid()))
os.rename("ready.tmp", "ready")
time.sleep(1000)
'@ | Set-Content $script
        $python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source
        $target = Start-TestTarget -Program $python -Arguments $script, $Mode -WorkDirectory $work
        Wait-Until { (Get-Content "/proc/$target/stat" -Raw).Split(' ')[2] -eq 'S' } 'the target to sleep'
        $before = Get-Content "/proc/$target/stat" -Raw
        if ($Mode -eq 'outside-lock') {
            Register-TestProcess ([int]$before.Split(') ')[1].Split(' ')[1]) # the parent, which keeps the locked file
        }

        Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive "image-$Mode") -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be "Unsupported,$Checkpoint"
        $errors[0].Exception.Message | Should -Match 'nothing was frozen'
        $errors[0].Exception.Message | Should -Match $Message
        Test-ProcessAlive $target | Should -BeTrue
        (Get-Content "/proc/$target/stat" -Raw).Split(' ')[2] | Should -Be $before.Split(' ')[2]
    }

    It 'saves a deleted file larger than the default limit when -GhostFileLimit allows it' {
        $work = Join-Path $TestDrive 'big-ghost-allowed'
        New-Item -ItemType Directory -Force $work | Out-Null
        $script = Join-Path $work 'hold.py'
        @'
import hashlib, os, time
data = os.urandom(3 << 20)
fd = os.open("big.dat", os.O_RDWR | os.O_CREAT)
os.write(fd, data)
os.unlink("big.dat")
with open("digest", "w") as d:
    d.write(hashlib.sha256(data).hexdigest())
with open("ready.tmp", "w") as r:
    r.write(str(os.getpid()))
os.rename("ready.tmp", "ready")
time.sleep(1000)
'@ | Set-Content $script
        $python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source
        $target = Start-TestTarget -Program $python -Arguments $script -WorkDirectory $work
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-big-ghost') -GhostFileLimit 4MB
        Get-ChildItem $image.Path -Filter 'ghost-file-*.img' | Should -Not -BeNullOrEmpty

        Restore-Process $image.Path | Out-Null
        Register-TestProcess $target
        $fd = Get-ChildItem "/proc/$target/fd" | Where-Object { $_.LinkTarget -like '*big.dat (deleted)' }
        $fd | Should -HaveCount 1
        (Get-FileHash -Algorithm SHA256 -LiteralPath $fd.FullName).Hash | Should -Be (Get-Content (Join-Path $work 'digest') -Raw).ToUpperInvariant()
    }
}
