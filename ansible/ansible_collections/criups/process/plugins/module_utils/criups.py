# -*- coding: utf-8 -*-
"""Runs a piece of PowerShell with the CriuPS module imported and returns what it returns, as JSON.

Each module's work is a few lines of PowerShell calling the cmdlets: the arguments go in as JSON in the
environment, the result comes back as one line of JSON on stdout, and a cmdlet's error comes back with its
error id (the first part of its FullyQualifiedErrorId), which the module fails with."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

COMMON_ARGUMENTS = dict(
    pwsh=dict(type='str', default='pwsh'),
    module_path=dict(type='str', default='CriuPS'),
)

_PRELUDE = r'''
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$in = $env:CRIUPS_ANSIBLE_ARGUMENTS | ConvertFrom-Json -AsHashtable
$p = $in.params
# The facts of a cmdlet's object: its simple properties, times in milliseconds (NameMs), lists of objects as lists.
function ConvertTo-Facts($Object) {
    if ($null -eq $Object) { return $null }
    $facts = [ordered]@{}
    foreach ($property in $Object.PSObject.Properties) {
        $value = try { $property.Value } catch { continue }
        if ($null -eq $value) { $facts[$property.Name] = $null }
        elseif ($value -is [timespan]) { $facts["$($property.Name)Ms"] = [math]::Round($value.TotalMilliseconds, 1) }
        elseif ($value -is [datetimeoffset] -or $value -is [datetime]) { $facts[$property.Name] = $value.ToString('o') }
        elseif ($value -is [string] -or $value -is [bool] -or $value -is [enum] -or $value.GetType().IsPrimitive -or $value -is [decimal]) { $facts[$property.Name] = if ($value -is [enum]) { "$value" } else { $value } }
        elseif ($value.GetType().Name -eq 'ByteCount') { $facts[$property.Name] = $value.Value }
        elseif ($value -is [System.Collections.IEnumerable] -and $property.Name -eq 'Rounds') { $facts[$property.Name] = @($value | ForEach-Object { ConvertTo-Facts $_ }) }
    }
    $facts
}
try {
    Import-Module $in.module_path
    $result = & {
BODY
    }
    $result | ConvertTo-Json -Depth 6 -Compress
}
catch {
    @{ failed = $true; error_id = ($_.FullyQualifiedErrorId -split ',')[0]; msg = "$($_.Exception.Message)" } | ConvertTo-Json -Compress
}
'''


def run_pwsh(module, body, params):
    """Runs BODY (PowerShell, with $p the params and $in.check_mode) and returns its result, or fails the module."""
    arguments = dict(params=params, check_mode=module.check_mode, module_path=module.params['module_path'])
    script = _PRELUDE.replace('BODY', body)
    rc, out, err = module.run_command(
        [module.params['pwsh'], '-NoProfile', '-NonInteractive', '-Command', script],
        environ_update={'CRIUPS_ANSIBLE_ARGUMENTS': json.dumps(arguments), 'NO_COLOR': '1'},
        expand_user_and_vars=False)  # the script's $_ and $p are PowerShell's, not environment variables
    lines = [line for line in out.splitlines() if line.startswith('{')]
    if not lines:
        module.fail_json(msg='PowerShell (%s) returned no result (exit code %d): %s %s' % (module.params['pwsh'], rc, out, err), error_id='NoResult')
    result = json.loads(lines[-1])
    if result.get('failed'):
        module.fail_json(msg=result.get('msg'), error_id=result.get('error_id'))
    return result
