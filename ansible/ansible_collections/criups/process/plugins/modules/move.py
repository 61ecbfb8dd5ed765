#!/usr/bin/python
# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: move
short_description: Moves a process tree from this host to another one (Move-Process -HostName)
description:
  - Runs on the source host and moves the process I(pid) to I(destination) over an SSH PowerShell session.
  - Idempotent: when the process is no longer here but a process with its PID runs on the destination, it is
    reported as moved (changed false).
options:
  pid: {description: The process to move., type: int, required: true}
  destination: {description: The destination's address or name., type: str, required: true}
  user: {description: The user to log in as there., type: str, default: root}
  key_file: {description: The SSH private key to log in with., type: str}
  known_hosts: {description: An SSH known_hosts file to check the destination's key against (StrictHostKeyChecking)., type: str}
  max_rounds: {description: Pre-dump rounds at most., type: int, default: 8}
  max_downtime: {description: Milliseconds of predicted freeze that end the rounds., type: int, default: 500}
  lazy: {description: Restore lazily there., type: bool, default: false}
  pwsh: {description: The PowerShell to run., type: str, default: pwsh}
  module_path: {description: CriuPS by name or the path of CriuPS.psd1., type: str, default: CriuPS}
'''

RETURN = r'''
moved: {description: The facts of the MovedProcess (ComputerName, ProcessId, SourceProcessId, DowntimeMs, BytesSent, PreDumpRounds, Rounds...)., type: dict, returned: always}
error_id: {description: The cmdlet's error id when it fails (DestinationUnsuitable, PidInUse, MoveFailed...)., type: str, returned: failure}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.criups.process.plugins.module_utils.criups import COMMON_ARGUMENTS, run_pwsh

BODY = r'''
$ssh = @{ HostName = $p.destination; UserName = $p.user }
if ($p.key_file) { $ssh.KeyFilePath = $p.key_file }
if ($p.known_hosts) { $ssh.Options = @{ UserKnownHostsFile = $p.known_hosts; StrictHostKeyChecking = 'yes'; GlobalKnownHostsFile = '/dev/null'; BatchMode = 'yes' } }
if (-not (Get-Process -Id $p.pid -ErrorAction Ignore)) {
    $session = New-PSSession @ssh
    try { $there = Invoke-Command -Session $session { param($Id) Get-Process -Id $Id -ErrorAction Ignore | Select-Object Id, ProcessName } -ArgumentList $p.pid }
    finally { Remove-PSSession $session }
    if (-not $there) { throw [System.Management.Automation.ErrorRecord]::new([Exception]::new("There is no process $($p.pid) here, nor on $($p.destination)."), 'ProcessNotFound', 'ObjectNotFound', $p.pid) }
    return @{ changed = $false; moved = @{ ComputerName = $p.destination; ProcessId = $there.Id; Name = $there.ProcessName } }
}
if ($in.check_mode) { return @{ changed = $true; moved = @{ ComputerName = $p.destination; SourceProcessId = $p.pid } } }
$moved = Move-Process -Id $p.pid @ssh -MaxRounds $p.max_rounds -MaxDowntime $p.max_downtime -Lazy:$p.lazy -Confirm:$false
@{ changed = $true; moved = ConvertTo-Facts $moved }
'''


def main():
    module = AnsibleModule(argument_spec=dict(
        pid=dict(type='int', required=True),
        destination=dict(type='str', required=True),
        user=dict(type='str', default='root'),
        key_file=dict(type='str'),
        known_hosts=dict(type='str'),
        max_rounds=dict(type='int', default=8),
        max_downtime=dict(type='int', default=500),
        lazy=dict(type='bool', default=False),
        **COMMON_ARGUMENTS), supports_check_mode=True)
    names = ('pid', 'destination', 'user', 'key_file', 'known_hosts', 'max_rounds', 'max_downtime', 'lazy')
    module.exit_json(**run_pwsh(module, BODY, {k: module.params[k] for k in names}))


if __name__ == '__main__':
    main()
