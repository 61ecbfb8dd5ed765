# The Ansible collection (ansible/ansible_collections/criups/process) run by Debian's ansible-playbook against the two
# test hosts of TestHosts.psm1: the source (this machine, a local connection) and the destination (reached over SSH).
# A playbook moves a process between them and a second run changes nothing; check mode changes nothing either; a
# failure carries the cmdlet's error id; a checkpoint is not retaken; skip_in_flight reaches Checkpoint-Process.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHosts.psm1') -Force
    Import-CriuPS
    $script:Destination = New-TestHost -Directory (Join-Path $TestDrive 'host')
    $script:Session = New-TestHostSession $Destination
    $script:DirtyMem = Get-TestTarget 'dirtymem'
    $pwsh = if ((Split-Path -Leaf ([Environment]::ProcessPath)) -eq 'pwsh') { [Environment]::ProcessPath } else { Join-Path $PSHOME 'pwsh' }
    $module = (Get-Module CriuPS).Path -replace '\.dll$', '.psd1'
    $script:Inventory = Join-Path $TestDrive 'inventory.ini'
    Set-Content $Inventory @"
[sources]
source ansible_connection=local ansible_python_interpreter=/usr/bin/python3

[destinations]
destination ansible_host=$($Destination.DestinationIp) ansible_user=root ansible_ssh_private_key_file=$($Destination.KeyFilePath) ansible_python_interpreter=/usr/bin/python3 ansible_ssh_common_args='-o UserKnownHostsFile=$($Destination.KnownHosts) -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null'

[all:vars]
criups_pwsh=$pwsh
criups_module=$module
"@
    $script:MovePlaybook = Join-Path $TestDrive 'move.yml'
    Set-Content $MovePlaybook @"
- hosts: source
  gather_facts: false
  tasks:
    - name: Move the process to the destination
      criups.process.move:
        pid: "{{ target_pid }}"
        destination: "{{ hostvars['destination'].ansible_host }}"
        key_file: "{{ hostvars['destination'].ansible_ssh_private_key_file }}"
        known_hosts: $($Destination.KnownHosts)
        pwsh: "{{ criups_pwsh }}"
        module_path: "{{ criups_module }}"
      register: moved
    - name: Report it
      ansible.builtin.debug:
        msg: "MOVED {{ moved.moved.ProcessId | default('-') }} {{ moved.moved.DowntimeMs | default('-') }}"

- hosts: destination
  gather_facts: false
  tasks:
    - name: It runs there
      ansible.builtin.command: cat /proc/{{ target_pid }}/comm
      register: comm
      changed_when: false
      failed_when: not ansible_check_mode and comm.stdout != 'dirtymem'
      check_mode: false
      ignore_errors: "{{ ansible_check_mode }}"
"@
    $script:CheckpointPlaybook = Join-Path $TestDrive 'checkpoint.yml'
    Set-Content $CheckpointPlaybook @'
- hosts: source
  gather_facts: false
  tasks:
    - name: Checkpoint the process, leaving it running
      criups.process.checkpoint:
        pid: "{{ target_pid }}"
        image_path: "{{ image_path }}"
        leave_running: true
        tcp_established: "{{ tcp_established | default(false) }}"
        skip_in_flight: "{{ skip_in_flight | default(false) }}"
        pwsh: "{{ criups_pwsh }}"
        module_path: "{{ criups_module }}"
'@
    $script:RoundTripPlaybook = Join-Path $TestDrive 'roundtrip.yml'
    Set-Content $RoundTripPlaybook @'
- hosts: source
  gather_facts: false
  tasks:
    - name: Checkpoint the process (it ends)
      criups.process.checkpoint:
        pid: "{{ target_pid }}"
        image_path: "{{ image_path }}"
        pwsh: "{{ criups_pwsh }}"
        module_path: "{{ criups_module }}"
    - name: Restore it
      criups.process.restore:
        image_path: "{{ image_path }}"
        pwsh: "{{ criups_pwsh }}"
        module_path: "{{ criups_module }}"
      register: restored
    - name: Report it
      ansible.builtin.debug:
        msg: "RESTORED {{ restored.process.Id }}"
'@
    $script:ServerPlaybook = Join-Path $TestDrive 'server.yml'
    Set-Content $ServerPlaybook @'
- hosts: destination
  gather_facts: false
  tasks:
    - name: A page server there
      criups.process.page_server:
        image_path: "{{ image_path }}"
        state: "{{ server_state }}"
        pwsh: "{{ criups_pwsh }}"
        module_path: "{{ criups_module }}"
      register: server
    - name: Report it
      ansible.builtin.debug:
        msg: "SERVER {{ server.server.ProcessId | default('-') }} {{ server.server.Port | default('-') }}"
'@

    # Runs ansible-playbook; returns its output and, per host, the recap's counters (ok, changed, failed...).
    function Invoke-Playbook([string]$Playbook, [hashtable]$Variables, [switch]$Check) {
        $env:ANSIBLE_COLLECTIONS_PATH = Join-Path (Get-RepositoryRoot) 'ansible'
        $env:ANSIBLE_LOCAL_TEMP = Join-Path $TestDrive 'ansible-local'
        $env:ANSIBLE_REMOTE_TMP = Join-Path $TestDrive 'ansible-remote'
        $env:ANSIBLE_NOCOLOR = '1'
        $env:ANSIBLE_RETRY_FILES_ENABLED = '0'
        $extra = @($Variables.GetEnumerator() | ForEach-Object { '-e'; "$($_.Key)=$($_.Value)" })
        $output = @(& ansible-playbook -i $Inventory $Playbook @extra $(if ($Check) { '--check' }) 2>&1 | ForEach-Object { "$_" })
        $recap = @{}
        foreach ($line in $output -match '^\S+\s+:\s+ok=') {
            $name, $counters = $line -split '\s+:\s+', 2
            $recap[$name.Trim()] = @{}
            foreach ($pair in $counters.Trim() -split '\s+') { $key, $value = $pair -split '='; $recap[$name.Trim()][$key] = [int]$value }
        }
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = $output -join "`n"; Recap = $recap }
    }
}

AfterAll {
    Stop-TestProcesses
    if ($Session) { Remove-PSSession $Session -ErrorAction Ignore }
    if ($Destination) { Remove-TestHost $Destination }
    'ANSIBLE_COLLECTIONS_PATH', 'ANSIBLE_LOCAL_TEMP', 'ANSIBLE_REMOTE_TMP', 'ANSIBLE_NOCOLOR', 'ANSIBLE_RETRY_FILES_ENABLED' | ForEach-Object { Remove-Item "env:$_" -ErrorAction Ignore }
}

Describe 'The criups.process Ansible collection' {
    AfterEach { Stop-TestProcesses }

    It 'moves a process between the two hosts; check mode before changes nothing, and a second run changes nothing' {
        $work = Join-Path $TestDrive 'moved'
        $log = Join-Path $work 'dirtymem.log'
        $target = Start-TestTarget -Program $DirtyMem -Arguments 16, 10, $log -WorkDirectory $work

        $check = Invoke-Playbook $MovePlaybook @{ target_pid = $target } -Check
        $check.ExitCode | Should -Be 0 -Because $check.Output
        $check.Recap['source'].changed | Should -Be 1
        Test-ProcessAlive $target | Should -BeTrue -Because 'check mode moves nothing'

        $first = Invoke-Playbook $MovePlaybook @{ target_pid = $target }
        $first.ExitCode | Should -Be 0 -Because $first.Output
        $first.Recap['source'].changed | Should -Be 1
        $first.Recap['destination'].failed | Should -Be 0
        $first.Output | Should -Match "MOVED $target \d"
        Test-ProcessAlive $target | Should -BeFalse -Because 'it ended here once it ran there'
        $before = @(Get-Content $log).Count
        Invoke-InTestHost $Destination 'kill', '-USR1', "$target"
        Wait-Until { @(Get-Content $log).Count -gt $before } 'the moved process to verify itself'
        @(Get-Content $log)[$before] | Should -Match "^OK pages=4096 writes=\d+ pid=$target$"

        $second = Invoke-Playbook $MovePlaybook @{ target_pid = $target }
        $second.ExitCode | Should -Be 0 -Because $second.Output
        $second.Recap['source'].changed | Should -Be 0
        $second.Recap['destination'].changed | Should -Be 0
        Invoke-InTestHost $Destination 'kill', '-9', "$target"
    }

    It 'fails with the cmdlet''s error id' {
        $gone = Start-TestTarget -Program $DirtyMem -Arguments 1, 10, (Join-Path $TestDrive 'gone/log') -WorkDirectory (Join-Path $TestDrive 'gone')
        Stop-TestProcesses
        $failed = Invoke-Playbook $MovePlaybook @{ target_pid = $gone }
        $failed.ExitCode | Should -Not -Be 0
        $failed.Recap['source'].failed | Should -Be 1
        $failed.Output | Should -Match '"error_id": "ProcessNotFound"'
    }

    It 'checkpoints once: an image that exists is not retaken' {
        $work = Join-Path $TestDrive 'checkpointed'
        $target = Start-TestTarget -Program $DirtyMem -Arguments 8, 10, (Join-Path $work 'log') -WorkDirectory $work
        $image = Join-Path $TestDrive 'ansible-image'
        $first = Invoke-Playbook $CheckpointPlaybook @{ target_pid = $target; image_path = $image }
        $first.ExitCode | Should -Be 0 -Because $first.Output
        $first.Recap['source'].changed | Should -Be 1
        (Get-CheckpointImage $image).RootProcessId | Should -Be $target
        $second = Invoke-Playbook $CheckpointPlaybook @{ target_pid = $target; image_path = $image }
        $second.ExitCode | Should -Be 0 -Because $second.Output
        $second.Recap['source'].changed | Should -Be 0
        Test-ProcessAlive $target | Should -BeTrue
    }

    It 'passes skip_in_flight on: a listener with connections not accepted yet is refused without it and saved with it, the process keeping them' {
        $work = Join-Path $TestDrive 'inflight'
        $target = Start-TestTarget -Program (Get-TestTarget 'tcpinflight') -Arguments $work, 4, 'inside' -WorkDirectory $work
        $image = Join-Path $TestDrive 'inflight-image'
        $refused = Invoke-Playbook $CheckpointPlaybook @{ target_pid = $target; image_path = $image; tcp_established = 'true' }
        $refused.ExitCode | Should -Not -Be 0
        $refused.Output | Should -Match '"error_id": "Unsupported"'
        $refused.Output | Should -Match '2 connection\(s\) waiting to be accepted.*-SkipInFlight'
        $saved = Invoke-Playbook $CheckpointPlaybook @{ target_pid = $target; image_path = $image; tcp_established = 'true'; skip_in_flight = 'true' }
        $saved.ExitCode | Should -Be 0 -Because $saved.Output
        Get-Content (Join-Path $image 'dump.log') | Select-String ': 2 connection\(s\) waiting to be accepted are dropped' | Should -Not -BeNullOrEmpty
        Invoke-SelfCheck $target (Join-Path $work 'tcpinflight.log') 'USR2' | Should -Be "OK pid=$target"
    }

    It 'checkpoints and restores a process, and a second run restores nothing' {
        $work = Join-Path $TestDrive 'roundtrip'
        $log = Join-Path $work 'log'
        $target = Start-TestTarget -Program $DirtyMem -Arguments 8, 10, $log -WorkDirectory $work
        $image = Join-Path $TestDrive 'roundtrip-image'
        $first = Invoke-Playbook $RoundTripPlaybook @{ target_pid = $target; image_path = $image }
        $first.ExitCode | Should -Be 0 -Because $first.Output
        $first.Recap['source'].changed | Should -Be 2
        $first.Output | Should -Match "RESTORED $target"
        Invoke-SelfCheck $target $log 'USR1' | Should -Match "^OK pages=2048 writes=\d+ pid=$target$"
        $second = Invoke-Playbook $RoundTripPlaybook @{ target_pid = $target; image_path = $image }
        $second.ExitCode | Should -Be 0 -Because $second.Output
        $second.Recap['source'].changed | Should -Be 0
    }

    It 'starts a page server on the destination once, and stops it' {
        $image = Join-Path $TestDrive 'served'
        $started = Invoke-Playbook $ServerPlaybook @{ image_path = $image; server_state = 'started' }
        $started.ExitCode | Should -Be 0 -Because $started.Output
        $started.Recap['destination'].changed | Should -Be 1
        $started.Output -match 'SERVER (\d+) (\d+)' | Should -BeTrue
        $serverPid, $port = [int]$Matches[1], [int]$Matches[2]
        Invoke-InTestHost $Destination 'ss', '-Hltn', "sport = :$port" | Should -Not -BeNullOrEmpty
        $again = Invoke-Playbook $ServerPlaybook @{ image_path = $image; server_state = 'started' }
        $again.Recap['destination'].changed | Should -Be 0
        $again.Output | Should -Match "SERVER $serverPid $port"
        $stopped = Invoke-Playbook $ServerPlaybook @{ image_path = $image; server_state = 'stopped' }
        $stopped.ExitCode | Should -Be 0 -Because $stopped.Output
        $stopped.Recap['destination'].changed | Should -Be 1
        Invoke-InTestHost $Destination 'ss', '-Hltn', "sport = :$port" | Should -BeNullOrEmpty
    }
}
