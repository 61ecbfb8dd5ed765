# End to end on real programs from the distribution: the restored program carries on and proves it from the outside.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS

    # Every process of the tree under a root, for the tests to kill them all afterwards.
    function Register-TestTree([int]$Root) {
        Get-ProcessTreeLayout $Root | ForEach-Object { Register-TestProcess ([int]$_.Split(' ')[0]) }
    }
}

Describe 'python3 with threads at work and a pending timer' {
    AfterEach { Stop-TestProcesses }

    It 'finishes every thread''s computation with the right result, and the timer still fires' {
        $python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source
        $work = Join-Path $TestDrive 'python'
        New-Item -ItemType Directory -Force $work | Out-Null
        $script = Join-Path $work 'compute.py'
        @'
import hashlib, os, signal, threading, time
# Four threads each carry a computation (state in Python objects) across the checkpoint; an interval timer
# armed before it must still fire after the restore, once its remaining time has run out.
alarms = []
signal.signal(signal.SIGALRM, lambda signum, frame: alarms.append(time.monotonic()))
data = [i * i % 1000003 for i in range(300000)]
def run(seed, steps, pause):
    total, digest = seed, hashlib.sha256()
    for step in range(steps):
        total += sum(data[step * 5000:(step + 1) * 5000]) * (seed + 1)
        digest.update(str(total).encode())
        if pause:
            time.sleep(pause)
    return total, digest.hexdigest()
results = {}
threads = [threading.Thread(target=lambda seed=seed: results.__setitem__(seed, run(seed, 60, 0.05))) for seed in range(4)]
for thread in threads:
    thread.start()
signal.setitimer(signal.ITIMER_REAL, 2.5)
open('ready.tmp', 'w').write(str(os.getpid()))
os.rename('ready.tmp', 'ready')
for thread in threads:
    thread.join()
while not alarms:
    time.sleep(0.05)
good = all(results[seed] == run(seed, 60, 0) for seed in range(4)) and len(alarms) == 1
open('result.tmp', 'w').write('%s %d threads=%d' % ('OK' if good else 'WRONG', os.getpid(), len(results)))
os.rename('result.tmp', 'result')
'@ | Set-Content $script
        $target = Start-TestTarget -Program $python -Arguments $script -WorkDirectory $work
        Start-Sleep -Milliseconds 800
        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-python')
        $image.Name | Should -BeLike 'python3*'
        $image.Processes[0].Threads.Count | Should -Be 5
        Test-Path (Join-Path $work 'result') | Should -BeFalse -Because 'the threads were still at work when frozen'

        $restored = Restore-Process $image.Path
        Register-TestProcess $restored.Id
        Wait-Until { Test-Path (Join-Path $work 'result') } 'python to finish its computation' 30
        Get-Content (Join-Path $work 'result') -Raw | Should -Be "OK $target threads=4"
    }
}

Describe 'A shell pipeline' {
    AfterEach { Stop-TestProcesses }

    It 'keeps flowing through producer | filter | consumer with no line lost or repeated' {
        $work = Join-Path $TestDrive 'pipeline'
        New-Item -ItemType Directory -Force $work | Out-Null
        # The producer numbers lines, the filter rewrites them, the consumer appends them to a file: any line lost or
        # repeated in a pipe across the checkpoint shows as a break in the sequence.
        $pipeline = @'
echo $$ > ready.tmp && mv ready.tmp ready
i=0; while :; do i=$((i + 1)); echo "$i"; [ $((i % 20)) -eq 0 ] && sleep 0.02; done |
    sed -u 's/^/line /' |
    awk '{ print $2; fflush() }' > out
'@
        $target = Start-TestTarget -Program /bin/sh -Arguments '-c', $pipeline -WorkDirectory $work
        $out = Join-Path $work 'out'
        Wait-Until { (Test-Path $out) -and (Get-Item $out).Length -gt 2000 } 'the pipeline to produce output'
        Register-TestTree $target
        $processes = @(Get-ProcessTreeLayout $target)
        $processes.Count | Should -BeGreaterOrEqual 4 -Because 'sh, producer, filter and consumer'

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-pipeline')
        $image.ProcessCount | Should -BeGreaterOrEqual 4
        $linesAtCheckpoint = @(Get-Content $out).Count

        $restored = Restore-Process $image.Path
        Wait-Until { @(Get-Content $out).Count -gt $linesAtCheckpoint + 500 } 'the pipeline to flow after the restore' 30
        Register-TestTree $target
        $lines = [int[]]@(Get-Content $out | Select-Object -SkipLast 1)
        $lines.Count | Should -BeGreaterThan ($linesAtCheckpoint + 400)
        for ($n = 0; $n -lt $lines.Count; $n++) {
            if ($lines[$n] -ne $n + 1) { throw "Line $($n + 1) of the output is $($lines[$n]): the sequence broke across the checkpoint" }
        }
        $restored.Id | Should -Be $target
    }
}

Describe 'A .NET program, on the runtime CriuPS ships on' {
    AfterEach { Stop-TestProcesses }

    It 'carries on with its threads, its memfd mapped twice and its eventfd under epoll, and still answers on its socket' {
        $work = Join-Path $TestDrive 'dotnet'
        $socket = Join-Path $work 'control.sock'
        $target = Start-TestTarget -Program (Get-DotnetTestTarget 'dotnet') -Arguments $socket -WorkDirectory $work
        function Invoke-Check {
            $client = [System.Net.Sockets.Socket]::new('Unix', 'Stream', 'Unspecified')
            try {
                $client.ReceiveTimeout = 10000
                $client.Connect([System.Net.Sockets.UnixDomainSocketEndPoint]::new($socket))
                $stream = [System.Net.Sockets.NetworkStream]::new($client)
                $writer = [System.IO.StreamWriter]::new($stream)
                $writer.AutoFlush = $true
                $writer.WriteLine('check')
                [System.IO.StreamReader]::new($stream).ReadLine()
            }
            finally { $client.Dispose() }
        }
        $before = Invoke-Check
        $before | Should -Match "^OK pid=$target workers=24 threads=\d+ memfd=2$"
        $threads = [int]($before -replace '.* threads=(\d+) .*', '$1')

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-dotnet')
        # The runtime starts and retires threads of its own (the thread pool's) at any moment: the count at the check
        # is a moment's, of which the 24 workers are the fixed part.
        $saved = $image.Processes[0].Threads.Count
        $saved | Should -BeGreaterThan 24
        $saved | Should -BeIn (($threads - 2)..($threads + 2)) -Because "the check counted $threads threads a moment before"
        @($image.Processes[0].Files.Target) | Should -Contain 'anon_inode:[eventfd]'
        @($image.Processes[0].Files.Target) | Should -Contain 'anon_inode:[eventpoll]'
        @($image.Processes[0].MemoryAreas | Where-Object Path -Like '*criups-double*').Count | Should -Be 2

        $restored = Restore-Process $image.Path
        Register-TestProcess $restored.Id
        @(Get-ChildItem "/proc/$($restored.Id)/task").Count | Should -BeIn (($saved - 2)..$saved) -Because "every saved thread came back (of $saved, one the pool was retiring may have ended since)"
        Invoke-Check | Should -Match "^OK pid=$target workers=24 threads=\d+ memfd=3$"
    }
}

Describe 'redis-server holding a million keys' {
    AfterEach { Stop-TestProcesses }

    It 'keeps every key, on its TCP port and its unix socket, and takes new commands' {
        $work = Join-Path $TestDrive 'redis'
        $socket = Join-Path $work 'redis.sock'
        # A port that was free a moment ago: redis cannot be asked for port 0 and tell which one it got.
        $probe = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $probe.Start(); $port = $probe.LocalEndpoint.Port; $probe.Stop()
        # No persistence, so that everything the restored server knows comes from its memory; the pid file doubles
        # as the ready file Start-TestTarget waits for.
        $target = Start-TestTarget -Program (Get-Command redis-server -CommandType Application)[0].Source -WorkDirectory $work -Arguments @(
            '--bind', '127.0.0.1', '--port', $port, '--unixsocket', $socket, '--save', '', '--appendonly', 'no',
            '--enable-debug-command', 'yes', '--pidfile', (Join-Path $work 'ready'), '--logfile', (Join-Path $work 'redis.log'))
        function Invoke-Redis([string[]]$Command, [switch]$Unix) {
            $to = if ($Unix) { '-s', $socket } else { '-p', $port }
            $answer = & redis-cli @to @Command 2>&1
            if ($LASTEXITCODE -ne 0) { throw "redis-cli $Command failed: $answer" }
            "$answer"
        }
        Wait-Until { (& redis-cli -p $port ping 2>$null) -eq 'PONG' } 'redis to answer on its port'
        Invoke-Redis debug, populate, 1000000 | Should -Be 'OK'
        Invoke-Redis set, marker, 'before checkpoint' | Should -Be 'OK'
        Invoke-Redis dbsize | Should -Be '1000001'

        $image = Checkpoint-Process -Id $target -ImagePath (Join-Path $TestDrive 'image-redis')
        Test-ProcessAlive $target | Should -BeFalse
        $restoreTime = Measure-Command { $restored = Restore-Process $image.Path }
        Register-TestProcess $restored.Id
        Write-Host ("    redis with 1,000,000 keys ({0:N0} MiB in {1} pages): frozen {2:N0} ms, dump {3:N0} ms, restore {4:N0} ms" -f
            $image.MemoryMiB, $image.Pages, $image.FrozenTime.TotalMilliseconds, $image.TotalTime.TotalMilliseconds, $restoreTime.TotalMilliseconds)

        $restored.Id | Should -Be $target
        Invoke-Redis dbsize | Should -Be '1000001'
        Invoke-Redis get, 'key:765432' | Should -Be 'value:765432'
        Invoke-Redis get, marker -Unix | Should -Be 'before checkpoint'
        Invoke-Redis set, after, 'restore' -Unix | Should -Be 'OK'
        Invoke-Redis get, after | Should -Be 'restore'
        Invoke-Redis dbsize | Should -Be '1000002'
    }
}
