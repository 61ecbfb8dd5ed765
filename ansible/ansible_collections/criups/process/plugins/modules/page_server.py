#!/usr/bin/python
# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: page_server
short_description: Starts or stops a page server that receives a checkpoint (Start-LazyPageServer)
description:
  - A page server lives in a PowerShell process; this module starts one of its own, detached, which runs until
    the server stops (after a lazy restore it served, or I(state=stopped)), and records it beside I(image_path)
    (C(.NAME.page-server.json)).
  - Idempotent: a server already running for I(image_path) is reported, not started again.
options:
  image_path: {description: The image directory it receives into and serves., type: str, required: true}
  state: {description: Started or stopped., type: str, choices: [started, stopped], default: started}
  address: {description: The address to listen on., type: str, default: 127.0.0.1}
  port: {description: The port (0 for any free one)., type: int, default: 0}
  certificate_path: {description: PEM certificate for TLS., type: str}
  key_path: {description: Its PEM key., type: str}
  client_thumbprint: {description: Client certificate thumbprints accepted (mutual TLS)., type: list, elements: str, default: []}
  trusted_network: {description: Listen beyond the loopback without authenticating clients., type: bool, default: false}
  pwsh: {description: The PowerShell to run., type: str, default: pwsh}
  module_path: {description: CriuPS by name or the path of CriuPS.psd1., type: str, default: CriuPS}
'''

RETURN = r'''
server: {description: The server's facts (Address, Port, Tls, CertificateThumbprint, ImagePath, ProcessId of its PowerShell)., type: dict, returned: always}
error_id: {description: The cmdlet's error id when it fails., type: str, returned: failure}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.criups.process.plugins.module_utils.criups import COMMON_ARGUMENTS, run_pwsh

BODY = r'''
$image = [IO.Path]::GetFullPath($p.image_path)
$record = Join-Path (Split-Path $image) ".$(Split-Path -Leaf $image).page-server.json"
$known = if (Test-Path $record) { Get-Content $record -Raw | ConvertFrom-Json -AsHashtable }
$alive = $known -and (Get-Process -Id $known.ProcessId -ErrorAction Ignore)
if ($p.state -eq 'stopped') {
    if (-not $alive) { Remove-Item -Force $record -ErrorAction Ignore; return @{ changed = $false; server = $known } }
    if (-not $in.check_mode) { Stop-Process -Id $known.ProcessId -Force; Remove-Item -Force $record }
    return @{ changed = $true; server = $known }
}
if ($alive) { return @{ changed = $false; server = $known } }
if ($in.check_mode) { return @{ changed = $true; server = @{ ImagePath = $image } } }
# The server's own PowerShell: starts it, writes its facts, and lives until it stops.
$script = @'
param($Arguments, $Record)
$ErrorActionPreference = 'Stop'
$a = $Arguments | ConvertFrom-Json -AsHashtable
Import-Module $a.Module
$start = @{ ImagePath = $a.ImagePath; Address = $a.Address; Port = $a.Port; TrustedNetwork = $a.TrustedNetwork }
if ($a.CertificatePath) { $start.CertificatePath = $a.CertificatePath; $start.KeyPath = $a.KeyPath }
if ($a.ClientThumbprint) { $start.ClientThumbprint = $a.ClientThumbprint }
try { $server = Start-LazyPageServer @start }
catch { @{ Failed = $true; ErrorId = ($_.FullyQualifiedErrorId -split ',')[0]; Message = "$($_.Exception.Message)" } | ConvertTo-Json | Set-Content "$Record.tmp"; Move-Item -Force "$Record.tmp" $Record; exit 1 }
@{ ProcessId = $PID; Address = $server.Address; Port = $server.Port; Tls = $server.Tls; CertificateThumbprint = $server.CertificateThumbprint; ImagePath = $server.ImagePath } | ConvertTo-Json | Set-Content "$Record.tmp"
Move-Item -Force "$Record.tmp" $Record
while ($server.State -notin 'Stopped', 'Failed') { Start-Sleep -Milliseconds 200 }
'@
$file = Join-Path ([IO.Path]::GetTempPath()) "criups-page-server-$([guid]::NewGuid()).ps1"
Set-Content $file $script
Remove-Item -Force $record -ErrorAction Ignore
$arguments = @{ Module = $in.module_path; ImagePath = $image; Address = $p.address; Port = $p.port; TrustedNetwork = [bool]$p.trusted_network
    CertificatePath = $p.certificate_path; KeyPath = $p.key_path; ClientThumbprint = @($p.client_thumbprint) } | ConvertTo-Json -Compress
$pwsh = [Environment]::ProcessPath
# Detached (a session of its own), with nothing of the module's stdio: Ansible waits for those to close.
& setsid -f /bin/sh -c 'exec "$0" "$@" < /dev/null > /dev/null 2>&1' $pwsh -NoProfile -NonInteractive -File $file $arguments $record
$deadline = (Get-Date).AddSeconds(60)
while (-not (Test-Path $record)) {
    if ((Get-Date) -gt $deadline) { throw 'The page server''s PowerShell did not start within 60 s.' }
    Start-Sleep -Milliseconds 50
}
Remove-Item $file -ErrorAction Ignore
$facts = Get-Content $record -Raw | ConvertFrom-Json -AsHashtable
if ($facts.Failed) { Remove-Item -Force $record; throw [System.Management.Automation.ErrorRecord]::new([Exception]::new($facts.Message), $facts.ErrorId, 'NotSpecified', $image) }
@{ changed = $true; server = $facts }
'''


def main():
    module = AnsibleModule(argument_spec=dict(
        image_path=dict(type='str', required=True),
        state=dict(type='str', choices=['started', 'stopped'], default='started'),
        address=dict(type='str', default='127.0.0.1'),
        port=dict(type='int', default=0),
        certificate_path=dict(type='str'),
        key_path=dict(type='str', no_log=False),
        client_thumbprint=dict(type='list', elements='str', default=[]),
        trusted_network=dict(type='bool', default=False),
        **COMMON_ARGUMENTS), supports_check_mode=True)
    names = ('image_path', 'state', 'address', 'port', 'certificate_path', 'key_path', 'client_thumbprint', 'trusted_network')
    module.exit_json(**run_pwsh(module, BODY, {k: module.params[k] for k in names}))


if __name__ == '__main__':
    main()
