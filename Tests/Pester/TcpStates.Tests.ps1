# End to end: TCP sockets in every state CriuPS saves with -TcpEstablished (Tests/Targets/tcpstates.c, both ends of
# each connection in the tree): half-closed and closing connections (CLOSE_WAIT, FIN_WAIT1, FIN_WAIT2, LAST_ACK,
# CLOSING), megabytes queued both ways in buffers beyond the defaults, sockets never connected with their options,
# IPv4-mapped IPv6, a SO_REUSEPORT group, a connect in progress (SYN_SENT) completed after the restore; and the
# refusal of a listener with connections not accepted yet.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source
}

Describe 'TCP in every state' {
    AfterEach { Stop-TestProcesses }

    It 'restores half-closed and closing connections, big queues, options, tcp4v6 and a SO_REUSEPORT group' {
        $work = Join-Path $TestDrive 'states'
        $log = Join-Path $work 'tcpstates.log'
        $target = Start-TestTarget -Program (Get-TestTarget 'tcpstates') -Arguments $work -WorkDirectory $work
        $written, $sendQueue, $receiveQueue = (Get-Content (Join-Path $work 'queued') -Raw).Trim().Split(' ') | ForEach-Object { [long]$_ }
        # The target's sockets as ss sees them (it checked their states too before it was ready).
        $states = @(& ss -Htanp 2>$null | Where-Object { $_ -match "pid=$target," } | ForEach-Object { ($_ -split '\s+')[0] })
        foreach ($state in 'CLOSE-WAIT', 'FIN-WAIT-1', 'FIN-WAIT-2', 'LAST-ACK', 'CLOSING') { $states | Should -Contain $state }

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'states-image') -TcpEstablished
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        # 4 half-closed pairs, the big one, two tcp4v6 ones: 14 ends, each with its stream.
        @(Get-ChildItem $image.Path -Filter 'tcp-stream-*.img').Count | Should -Be 14
        $saved = Get-Content (Join-Path $image.Path 'dump.log') | Select-String 'bytes received and unread'
        Write-Host "    big connection: $written bytes written, $sendQueue in the send queue and $receiveQueue in the receive queue at the dump"

        $restored = Restore-Process $image.Path -TcpEstablished
        Register-TestProcess $restored.Id
        Get-LockTable | Should -BeNullOrEmpty -Because 'the lock goes once the connections are back'
        Invoke-SelfCheck $target $log -TimeoutSeconds 60 | Should -Be "OK pid=$target" -Because 'every state, byte, option and listener is back'
        $saved.Count | Should -Be 14
    }

    It 'refuses, before freezing, a listener with a connection not accepted yet, naming it, and leaves it working' {
        $work = Join-Path $TestDrive 'pending'
        New-Item -ItemType Directory -Force $work | Out-Null
        $script = @'
import os, socket, sys, time
os.chdir(sys.argv[1])
L = socket.socket(); L.bind(('127.0.0.1', 0)); L.listen(4)
c = socket.create_connection(L.getsockname()); c.sendall(b'early')
open('port', 'w').write(str(L.getsockname()[1]))
open('ready.tmp', 'w').write(str(os.getpid())); os.rename('ready.tmp', 'ready')
while not os.path.exists('go'): time.sleep(0.05)
a, _ = L.accept()
open('result.tmp', 'w').write(a.recv(5).decode()); os.rename('result.tmp', 'result')
while True: time.sleep(1)
'@
        $target = Start-TestTarget -Program $Python -Arguments '-c', $script, $work -WorkDirectory $work
        $port = Get-Content (Join-Path $work 'port') -Raw

        Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'pending-image') -TcpEstablished -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'Unsupported,CriuPS.Cmdlets.CheckpointProcessCommand'
        $errors[0].Exception.Message | Should -Match "nothing was frozen"
        $errors[0].Exception.Message | Should -Match "(?s)process $target.*TCP socket listening on 127\.0\.0\.1:$port has 1 connection\(s\) waiting to be accepted"
        Join-Path $TestDrive 'pending-image' | Should -Not -Exist
        New-Item (Join-Path $work 'go') | Out-Null
        Wait-Until { Test-Path (Join-Path $work 'result') } 'the target to accept its connection'
        Get-Content (Join-Path $work 'result') -Raw | Should -Be 'early' -Because 'the refused checkpoint changed nothing'
    }

    It 'restores a connect in progress (SYN_SENT) with -TcpEstablished: it completes once the peer answers after the restore, and data flows' {
        # A listener outside the tree with backlog 0 and one connection it has not accepted: its queue is full, so the
        # kernel drops the SYNs of the next connect, which stays SYN_SENT until the listener accepts (after the restore).
        $gate = Join-Path $TestDrive 'gate'
        $gateScript = @'
import os, socket, sys, time
os.chdir(sys.argv[1])
L = socket.socket(); L.bind(('127.0.0.1', 0)); L.listen(0)
first = socket.create_connection(L.getsockname())
open('port', 'w').write(str(L.getsockname()[1]))
open('ready.tmp', 'w').write(str(os.getpid())); os.rename('ready.tmp', 'ready')
while not os.path.exists('open'): time.sleep(0.05)
L.accept(); second, peer = L.accept()
second.sendall(second.recv(4).upper())
open('peer', 'w').write(str(peer[1]))
while True: time.sleep(1)
'@
        Start-TestTarget -Program $Python -Arguments '-c', $gateScript, $gate -WorkDirectory $gate | Out-Null
        $port = [int](Get-Content (Join-Path $gate 'port') -Raw)
        $work = Join-Path $TestDrive 'synsent'
        $script = @'
import errno, os, select, socket, sys, time
os.chdir(sys.argv[1])
s = socket.socket(); s.setblocking(False)
assert s.connect_ex(('127.0.0.1', int(sys.argv[2]))) == errno.EINPROGRESS
open('local', 'w').write(str(s.getsockname()[1]))
open('ready.tmp', 'w').write(str(os.getpid())); os.rename('ready.tmp', 'ready')
select.select([], [s], [], 300)
error = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
s.setblocking(True); s.sendall(b'ping')
open('result.tmp', 'w').write(f'{error} {s.recv(4).decode()}'); os.rename('result.tmp', 'result')
while True: time.sleep(1)
'@
        $target = Start-TestTarget -Program $Python -Arguments '-c', $script, $work, $port -WorkDirectory $work
        Wait-Until { @(& ss -Htn state syn-sent "( dport = :$port )").Count -eq 1 } 'the connect to wait for an answer'

        # As with CRIU, only with the switch (it locks the connection and puts it in repair mode).
        Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'synsent-refused') -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'TcpEstablishedRequired,CriuPS.Cmdlets.CheckpointProcessCommand'
        $errors[0].Exception.Message | Should -Match "(?s)nothing was frozen.*TCP connection 127\.0\.0\.1:\d+ to 127\.0\.0\.1:$port \(connecting, SYN_SENT\): a connecting TCP connection, saved only with -TcpEstablished"

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'synsent-image') -TcpEstablished
        Wait-Until { -not (Test-ProcessAlive $target) } 'the checkpointed process to end'
        @(Get-ChildItem $image.Path -Filter 'tcp-stream-*.img').Count | Should -Be 1
        $restored = Restore-Process $image.Path -TcpEstablished
        Register-TestProcess $restored.Id
        Get-LockTable | Should -BeNullOrEmpty -Because 'the lock goes once the connections are back'
        $local = Get-Content (Join-Path $work 'local') -Raw
        @(& ss -Htn state syn-sent "( sport = :$local and dport = :$port )").Count | Should -Be 1 -Because 'the same socket connects again from its port'
        Test-Path (Join-Path $work 'result') | Should -BeFalse -Because 'nothing answered yet'

        New-Item (Join-Path $gate 'open') | Out-Null
        # The kernel's retransmit timer sends the SYN again (1 s, 2 s, 4 s... after the restore's connect).
        Wait-Until { Test-Path (Join-Path $work 'result') } 'the connect to complete' -TimeoutSeconds 120
        Get-Content (Join-Path $work 'result') -Raw | Should -Be '0 PING' -Because 'the connect completed without error and data went both ways'
        Get-Content (Join-Path $gate 'peer') -Raw | Should -Be $local -Because 'the peer accepted the connection from the saved port'
    }
}
