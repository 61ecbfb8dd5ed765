# End to end: a TCP server whose port still has connections when it is restored (its closed clients in TIME-WAIT,
# one connection accepted by a worker that left the tree) binds and listens again, as with CRIU, IPv4 and IPv6, with
# and without -TcpEstablished; each listener's SO_REUSEADDR is the saved one afterwards (Tests/Targets/lingering.py).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $script:Python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source
    $script:Target = Join-Path (Get-RepositoryRoot) 'Tests/Targets/lingering.py'

    # The states ss shows for the connections of a local port, one per line ("TIME-WAIT", "ESTAB"...).
    function Get-PortStates([int]$Port) {
        @(& ss -Htan "( sport = :$Port )" | ForEach-Object { ($_ -split '\s+')[0] } | Sort-Object)
    }
}

Describe 'Listeners whose port has lingering connections' {
    AfterEach { Stop-TestProcesses }

    It 'restores an IPv<Family> listener with connections in TIME-WAIT and one held outside the tree (<Mode>)' -ForEach @(
        @{ Family = '4'; Mode = 'plain' }
        @{ Family = '6'; Mode = 'plain' }
        @{ Family = '4'; Mode = 'established' }
        @{ Family = '6'; Mode = 'established' }
    ) {
        $work = Join-Path $TestDrive "v$Family-$Mode"
        $log = Join-Path $work 'lingering.log'
        $server = Start-TestTarget -Program $Python -Arguments $Target, $work, $Family, $Mode -WorkDirectory $work
        $helper = [int](Get-Content (Join-Path $work 'helper') -Raw)
        Register-TestProcess $helper
        $port = [int]((Get-Content (Join-Path $work 'port') -Raw).Trim().Split(' ')[0])
        $states = Get-PortStates $port
        ($states | Where-Object { $_ -eq 'TIME-WAIT' }).Count | Should -Be 3 -Because 'the server closed three clients first'

        $established = $Mode -eq 'established'
        $image = Checkpoint-Process -Id $server -ImagePath (Join-Path $TestDrive "v$Family-$Mode-image") -TcpEstablished:$established
        $image.ProcessCount | Should -Be 1 -Because 'the helper left the tree'
        Wait-Until { -not (Test-ProcessAlive $server) } 'the checkpointed server to end'
        $states = Get-PortStates $port
        $states | Should -Contain 'TIME-WAIT' -Because 'the connections still linger when the listener is restored'
        $states | Should -Contain 'ESTAB' -Because 'the helper still holds its connection to the port'
        $states | Should -Not -Contain 'LISTEN'

        Restore-Process $image.Path -TcpEstablished:$established | Out-Null
        Get-PortStates $port | Should -Contain 'LISTEN'
        Invoke-SelfCheck $server $log | Should -Be "OK pid=$server" -Because 'both listeners accept and echo, SO_REUSEADDR is as saved (1 and 0), the own connection carries data'
        Test-ProcessAlive $helper | Should -BeTrue
        Get-LockTable | Should -BeNullOrEmpty
    }
}
