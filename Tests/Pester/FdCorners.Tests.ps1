# End to end: descriptors of unusual kinds (Tests/Targets/fdcorners.c): O_PATH descriptors and /proc files, SIGIO
# owners, sockets and FIFOs on removed paths, leases and pidfds, descriptors in flight (SCM_RIGHTS), and what is
# refused of them.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:FdCorners = Get-TestTarget 'fdcorners'
}

Describe 'Descriptors of unusual kinds' {
    AfterEach { Stop-TestProcesses }

    It 'restores <What>' -ForEach @(
        @{ What = 'O_PATH descriptors of a file, a directory, a symlink and /proc/self, a /proc/PID directory and /proc/self/status'; Mode = 'paths'; CheckBefore = $true }
        @{ What = 'SIGIO owners of a socket (the process), a pipe (a thread) and a file (the process group) with their signals'; Mode = 'owners'; CheckBefore = $true }
        @{ What = 'sockets bound to removed or replaced paths and a FIFO on a removed path with its data'; Mode = 'unlinked'; CheckBefore = $false }
        @{ What = 'read and write leases'; Mode = 'lease'; CheckBefore = $true }
        @{ What = 'pidfds of running, cloned, zombie and reaped children and of itself'; Mode = 'pidfd'; CheckBefore = $false }
        @{ What = 'descriptors in flight (a file, pipe ends, a socket, an eventfd) in stream, datagram and seqpacket queues, among plain data'; Mode = 'rights'; CheckBefore = $false }
    ) {
        $work = Join-Path $TestDrive $Mode
        $log = Join-Path $work 'fdcorners.log'
        $target = Start-TestTarget -Program $FdCorners -Arguments $work, $Mode -WorkDirectory $work
        # Checks that take what they check (queued data, children's exits) run once, after the restore.
        if ($CheckBefore) { Invoke-SelfCheck $target $log | Should -Be "OK $Mode pid=$target" }
        $pids = Get-ProcessTreeLayout $target | ForEach-Object { [int]$_.Split(' ')[0] }
        $locks = Get-Content /proc/locks | Where-Object { $_ -match "\b$target\b" }

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive "image-$Mode")
        foreach ($id in $pids) { Wait-Until { -not (Test-ProcessAlive $id) } "process $id to end" }

        Restore-Process $image.Path | Out-Null
        $pids | ForEach-Object { Register-TestProcess $_ }
        Invoke-SelfCheck $target $log | Should -Be "OK $Mode pid=$target"
        $after = Get-Content /proc/locks | Where-Object { $_ -match "\b$target\b" }
        ($after -replace '^\d+:\s*' | Sort-Object) | Should -Be ($locks -replace '^\d+:\s*' | Sort-Object) -Because 'leases are held by the same process again'
        Get-ChildItem $work -Filter '*.criu-sk-ghost' | Should -BeNullOrEmpty -Because 'a file moved aside for a socket is back'
    }

    It 'refuses <What> before freezing anything' -ForEach @(
        @{ What = 'a pidfd of a process outside the tree'; Mode = 'outside'; Message = 'fd \d+: a pidfd of process {OUTSIDE}, which is outside the checkpointed tree' }
        @{ What = 'a pidfd of a single thread'; Mode = 'thread'; Message = 'fd \d+: a pidfd of a single thread \(PIDFD_THREAD; not supported, as with CRIU\)' }
    ) {
        $work = Join-Path $TestDrive "refused-$Mode"
        $outside = Start-TestTarget -Program $FdCorners -Arguments (Join-Path $work 'outside'), 'owners' -WorkDirectory (Join-Path $work 'outside')
        $script = Join-Path $TestDrive 'pidfd.py'
        @'
import os, sys, time
PIDFD_THREAD = os.O_EXCL
fd = os.pidfd_open(int(sys.argv[2])) if sys.argv[1] == "outside" else os.pidfd_open(os.getpid(), PIDFD_THREAD)
with open("ready.tmp", "w") as r:
    r.write(str(os.getpid()))
os.rename("ready.tmp", "ready")
time.sleep(1000)
'@ | Set-Content $script
        $python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source
        $target = Start-TestTarget -Program $python -Arguments $script, $Mode, $outside -WorkDirectory (Join-Path $work 'holder')

        Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive "image-$Mode") -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $errors[0].Exception.Message | Should -Match 'nothing was frozen'
        $errors[0].Exception.Message | Should -Match $Message.Replace('{OUTSIDE}', "$outside")
        Test-ProcessAlive $target | Should -BeTrue
    }

    It 'refuses <What> in flight before freezing, and leaves the queue as it was' -ForEach @(
        @{ What = 'a socket'; Mode = 'cycle'; Message = 'fd \d+: unix stream socket has descriptors in flight \(SCM_RIGHTS\) that CriuPS cannot save: unix stream socket is in flight in its own queue, or in the queue of a socket in flight in its own \(a cycle of descriptors in flight; not supported\)' }
        @{ What = 'a pidfd'; Mode = 'flightpidfd'; Message = 'fd \d+: unix stream socket has descriptors in flight \(SCM_RIGHTS\) that CriuPS cannot save: .*pidfd' }
    ) {
        $work = Join-Path $TestDrive $Mode
        $target = Start-TestTarget -Program $FdCorners -Arguments $work, $Mode -WorkDirectory $work
        Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive "image-$Mode") -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $errors[0].Exception.Message | Should -Match 'nothing was frozen'
        $errors[0].Exception.Message | Should -Match $Message
        Invoke-SelfCheck $target (Join-Path $work 'fdcorners.log') | Should -Be "OK $Mode pid=$target" -Because 'the queued data and descriptors were not touched'
    }

    It 'turns a damaged descriptor in flight into ImageCorrupt naming sk-queues.img: <What>' -ForEach @(
        @{ What = 'a file id files.img lacks'; Name = 'missing'; Damage = { param($scm) $scm.rights[0] = 99999 }; Message = 'carries the file with id 99999, which files.img does not have' }
        @{ What = 'ancillary data of another type'; Name = 'type'; Damage = { param($scm) $scm.type = 2 }; Message = 'carries ancillary data of type 2' }
        @{ What = 'no descriptor'; Name = 'empty'; Damage = { param($scm) $scm.rights = @() }; Message = 'carries 0 descriptors' }
    ) {
        $work = Join-Path $TestDrive "damaged-$Name"
        $target = Start-TestTarget -Program $FdCorners -Arguments $work, 'rights' -WorkDirectory $work
        $image = Join-Path $TestDrive "image-damaged-$Name"
        Checkpoint-Process -Id $target -ImagePath $image | Out-Null
        Wait-Until { -not (Test-ProcessAlive $target) } "process $target to end"
        $file = Join-Path $image 'sk-queues.img'
        $queues = Import-CheckpointImageFile $file
        & $Damage @($queues.entries | Where-Object { $_.scm } | Select-Object -First 1).scm[0]
        $queues | Export-CheckpointImageFile $file -Force
        Remove-Item (Join-Path $image 'criups-digests.img')

        $failure = $null
        try { Restore-Process $image -ErrorAction Stop | Out-Null } catch { $failure = $_ }
        $failure.FullyQualifiedErrorId | Should -Be 'ImageCorrupt,CriuPS.Cmdlets.RestoreProcessCommand'
        $failure.Exception.Message | Should -Match 'sk-queues\.img'
        $failure.Exception.Message | Should -Match ([regex]::Escape($Message))
        Test-ProcessAlive $target | Should -BeFalse -Because 'nothing was restored'
    }
}
