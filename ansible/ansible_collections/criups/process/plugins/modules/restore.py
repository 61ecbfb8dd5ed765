#!/usr/bin/python
# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: restore
short_description: Restores a process tree from an image directory (Restore-Process -Detach)
description:
  - Brings the processes of I(image_path) back with their PIDs, detached (children of init).
  - Idempotent: when a process with the image's root PID and name runs already, it is taken as the restored one.
options:
  image_path: {description: The image directory., type: str, required: true}
  lazy: {description: Restore lazily (the memory follows the running process)., type: bool, default: false}
  tcp_established: {description: Rebuild the saved TCP connections., type: bool, default: false}
  pwsh: {description: The PowerShell to run., type: str, default: pwsh}
  module_path: {description: CriuPS by name or the path of CriuPS.psd1., type: str, default: CriuPS}
'''

RETURN = r'''
process: {description: The restored process (Id, Name)., type: dict, returned: always}
error_id: {description: The cmdlet's error id when it fails., type: str, returned: failure}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.criups.process.plugins.module_utils.criups import COMMON_ARGUMENTS, run_pwsh

BODY = r'''
$image = Get-CheckpointImage -LiteralPath $p.image_path
$running = Get-Process -Id $image.RootProcessId -ErrorAction Ignore
if ($running -and $running.ProcessName -eq $image.Name) {
    return @{ changed = $false; process = @{ Id = $running.Id; Name = $running.ProcessName } }
}
if ($in.check_mode) { return @{ changed = $true; process = @{ Id = $image.RootProcessId; Name = $image.Name } } }
$restored = Restore-Process -ImagePath $p.image_path -Detach -LazyPages:$p.lazy -TcpEstablished:$p.tcp_established -Confirm:$false
if ($p.lazy) { $null = $restored | Wait-LazyRestore }
@{ changed = $true; process = @{ Id = $restored.Id; Name = $restored.ProcessName } }
'''


def main():
    module = AnsibleModule(argument_spec=dict(
        image_path=dict(type='str', required=True),
        lazy=dict(type='bool', default=False),
        tcp_established=dict(type='bool', default=False),
        **COMMON_ARGUMENTS), supports_check_mode=True)
    params = {k: module.params[k] for k in ('image_path', 'lazy', 'tcp_established')}
    module.exit_json(**run_pwsh(module, BODY, params))


if __name__ == '__main__':
    main()
