# The restore's checks of the IP options and netlink fields CriuPS adds to files.img (ip_opts fields 1000-1009 of the
# inet socket entry, the netlink socket entry's fields from 1000, and CRIU's own ttl, tos and protocol): a value
# damaged since the dump (edited through Import/Export-CheckpointImageFile, which records the digest again) is
# ImageCorrupt naming files.img, never UnexpectedError, and nothing is left running.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-CriuPS
    $python = (Get-Command python3 -CommandType Application | Select-Object -First 1).Source
    $work = Join-Path $TestDrive 'sockets'
    $script = @'
import os, socket, time
# IP_MTU_DISCOVER, IPV6_MTU_DISCOVER and IPV6_TCLASS, which Python does not name.
IP_MTU_DISCOVER, IPV6_MTU_DISCOVER, IPV6_TCLASS = 10, 23, 67
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, 2)
u.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 7)
u.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 33)
u.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, bytes([1, 1, 1, 1]))
v = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
v.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 9)
v.setsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS, 8)
v.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, 2)
n = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
n.bind((0, 1))
open('ready', 'w').write(str(os.getpid()))
while True: time.sleep(1)
'@
    $script:Target = Start-TestTarget -Program $python -Arguments '-c', $script -WorkDirectory $work
    $script:Original = Join-Path $TestDrive 'original'
    Checkpoint-Process -Id $Target -ImagePath $Original | Out-Null
    Wait-Until { -not (Test-ProcessAlive $Target) } 'the checkpointed process to end'
}

AfterAll { Stop-TestProcesses }

Describe 'Damaged socket values in files.img' {
    It 'gives ImageCorrupt naming files.img for <What>' -ForEach @(
        @{ What = 'an IPv4 MTU discovery mode out of range'; Kind = 'isk'; Family = 'INET'; Field = 'ip_opts.criups_mtu_discover'; Value = 99 }
        @{ What = 'an IPv6 MTU discovery mode out of range'; Kind = 'isk'; Family = 'INET6'; Field = 'ip_opts.criups_mtu_discover'; Value = 99 }
        @{ What = 'a multicast TTL above 255'; Kind = 'isk'; Family = 'INET'; Field = 'ip_opts.criups_multicast_ttl'; Value = 4096 }
        @{ What = 'malformed IP options'; Kind = 'isk'; Family = 'INET'; Field = 'ip_opts.criups_options'; Value = 'BwEAAA==' }
        @{ What = 'a TTL of 0'; Kind = 'isk'; Family = 'INET'; Field = 'ip_opts.ttl'; Value = 0 }
        @{ What = 'IPv6 unicast hops above 255'; Kind = 'isk'; Family = 'INET6'; Field = 'ip_opts.criups_unicast_hops'; Value = 300 }
        @{ What = 'an IPv6 traffic class above 255'; Kind = 'isk'; Family = 'INET6'; Field = 'ip_opts.criups_tclass'; Value = 300 }
        @{ What = 'a netlink protocol beyond the last'; Kind = 'nlsk'; Field = 'protocol'; Value = 77 }
        @{ What = 'a netlink type other than raw and datagram'; Kind = 'nlsk'; Field = 'criups_type'; Value = 5 }
        @{ What = 'a netlink group its protocol does not have'; Kind = 'nlsk'; Field = 'groups'; Value = @(1, 0, 2147483648) }
        @{ What = 'a netlink peer group above 32'; Kind = 'nlsk'; Field = 'dst_group'; Value = 40 }
    ) {
        $image = Join-Path $TestDrive "damaged-$Kind-$($Field -replace "\W", "-")-$Family"
        Copy-Item -Recurse $Original $image
        $files = Join-Path $image 'files.img'
        $json = [System.Text.Json.Nodes.JsonNode]::Parse((Import-CheckpointImageFile -LiteralPath $files | ConvertTo-Json -Depth 32 -Compress))
        $entry = @($json['entries'].AsArray() | Where-Object { $null -ne $_[$Kind] -and ($null -eq $Family -or $_[$Kind]['family'].ToString() -eq $Family) })[0][$Kind]
        $entry | Should -Not -BeNullOrEmpty -Because "the image has the $Kind entry"
        $parent, $name = if ($Field -match '^(.+)\.(.+)$') { $entry[$Matches[1]], $Matches[2] } else { $entry, $Field }
        $parent[$name] = [System.Text.Json.Nodes.JsonNode]::Parse(($Value | ConvertTo-Json -Compress))
        $json.ToJsonString() | Export-CheckpointImageFile -LiteralPath $files -Force -ErrorAction Stop

        Restore-Process $image -ErrorVariable errors -ErrorAction SilentlyContinue | Out-Null
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'ImageCorrupt,CriuPS.Cmdlets.RestoreProcessCommand'
        $errors[0].Exception.Message | Should -Match 'files\.img'
        Test-ProcessAlive $Target | Should -BeFalse -Because 'nothing is left running'
    }
}
