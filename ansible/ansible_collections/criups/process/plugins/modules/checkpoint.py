#!/usr/bin/python
# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: checkpoint
short_description: Checkpoints a process tree into an image directory (Checkpoint-Process)
description:
  - Saves the process and the tree below it into I(image_path), ending it unless I(leave_running).
  - Idempotent: when I(image_path) holds an image already, it is reported and not retaken, unless I(force).
options:
  pid: {description: The process to checkpoint., type: int, required: true}
  image_path: {description: The image directory., type: str, required: true}
  leave_running: {description: Keep the process running., type: bool, default: false}
  tcp_established: {description: Save established TCP connections., type: bool, default: false}
  skip_in_flight: {description: Save TCP listeners with connections not accepted yet; those connections are dropped., type: bool, default: false}
  force: {description: Retake the image even when one is there., type: bool, default: false}
  pwsh: {description: The PowerShell to run., type: str, default: pwsh}
  module_path: {description: CriuPS by name or the path of CriuPS.psd1., type: str, default: CriuPS}
'''

RETURN = r'''
image: {description: The facts of the CheckpointImage (Path, RootProcessId, Pages, FrozenTimeMs...)., type: dict, returned: always}
error_id: {description: The cmdlet's error id when it fails., type: str, returned: failure}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.criups.process.plugins.module_utils.criups import COMMON_ARGUMENTS, run_pwsh

BODY = r'''
if ((Test-Path -LiteralPath (Join-Path $p.image_path 'inventory.img')) -and -not $p.force) {
    return @{ changed = $false; image = ConvertTo-Facts (Get-CheckpointImage -LiteralPath $p.image_path) }
}
if ($in.check_mode) { return @{ changed = $true; image = @{ Path = $p.image_path; RootProcessId = $p.pid } } }
$image = Checkpoint-Process -Id $p.pid -ImagePath $p.image_path -LeaveRunning:$p.leave_running -TcpEstablished:$p.tcp_established -SkipInFlight:$p.skip_in_flight -Force:$p.force -Confirm:$false
@{ changed = $true; image = ConvertTo-Facts $image }
'''


def main():
    module = AnsibleModule(argument_spec=dict(
        pid=dict(type='int', required=True),
        image_path=dict(type='str', required=True),
        leave_running=dict(type='bool', default=False),
        tcp_established=dict(type='bool', default=False),
        skip_in_flight=dict(type='bool', default=False),
        force=dict(type='bool', default=False),
        **COMMON_ARGUMENTS), supports_check_mode=True)
    params = {k: module.params[k] for k in ('pid', 'image_path', 'leave_running', 'tcp_established', 'skip_in_flight', 'force')}
    module.exit_json(**run_pwsh(module, BODY, params))


if __name__ == '__main__':
    main()
