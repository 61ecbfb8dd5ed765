# End to end: unix sockets that receive with SO_PASSCRED, a message queued in each (Tests/Targets/unixcreds.c, a
# datagram pair and a stream pair). A message queued with its sender's credentials (SCM_CREDENTIALS) is refused
# before the freeze, as CRIU refuses it: the kernel lets a message carry only credentials naming a process that
# exists as it is sent, and queues are refilled before the restored processes exist. One queued without any (sent
# before the receiver asked for them) is saved and comes back without any.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
}

Describe 'Queued unix messages and SO_PASSCRED' {
    AfterEach { Stop-TestProcesses }

    It 'saves messages queued without credentials to SO_PASSCRED receivers, and they come back without any (pid 0, the overflow ids)' {
        $work = Join-Path $TestDrive 'without'
        $log = Join-Path $work 'unixcreds.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'unixcreds') -Arguments $work, 'without' -WorkDirectory $work

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'without-image')
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        $restored = Restore-Process $image.Path
        Register-TestProcess $restored.Id
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'each message is back with no credentials (not the engine''s), and SO_PASSCRED gives new ones'
    }

    It 'refuses, before freezing, messages queued with their senders'' credentials, naming the sender and the reason, and leaves them to the process' {
        $work = Join-Path $TestDrive 'with'
        $log = Join-Path $work 'unixcreds.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'unixcreds') -Arguments $work, 'with' -WorkDirectory $work

        Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'with-image') -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $message = $errors[0].Exception.Message
        $message | Should -Match 'nothing was frozen'
        foreach ($type in 'datagram', 'stream') {
            $message | Should -Match "fd \d+: unix $type socket has messages queued with their senders' credentials \(SCM_CREDENTIALS, SO_PASSCRED; the first from process $target, uid 0, gid 0\), which CriuPS cannot put back: the kernel lets a message carry only credentials naming a process that exists as it is sent"
        }
        Join-Path $TestDrive 'with-image' | Should -Not -Exist
        Invoke-SelfCheck $target $log | Should -Be "OK pid=$target" -Because 'the refused checkpoint took nothing from the queues'
    }
}
