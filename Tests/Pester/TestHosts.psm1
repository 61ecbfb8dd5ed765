# Two "machines" on this one, for the tests of Move-Process and the Ansible collection: the source is this
# PowerShell (the host's namespaces); the destination is a set of namespaces of its own (network, PID and mount,
# with its own /proc, so its PIDs are its own as on another machine) on the same root file system (the module and
# the test targets' files exist there as on a prepared machine), joined to the source by a veth pair, each end with
# its own address, and running sshd with PowerShell as an SSH subsystem and key-based root login.
# A second subsystem, powershell-limited, runs PowerShell without CAP_CHECKPOINT_RESTORE and CAP_SYS_ADMIN: a machine
# where restores cannot work (New-PSSession -Subsystem powershell-limited).
# New-TestHost makes it (a few seconds); Remove-TestHost kills everything in it and removes the link and files.

$script:Subnet = '10.77.17'

function Invoke-Checked([string]$What) {
    $output = & $args[0] @($args | Select-Object -Skip 1) 2>&1
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit code $LASTEXITCODE): $output" }
    $output
}

# The PowerShell the subsystem runs: this one (the apphost when the tests run under it, else the one in $PSHOME).
function Get-PwshPath {
    $self = [Environment]::ProcessPath
    if ((Split-Path -Leaf $self) -eq 'pwsh') { $self } else { Join-Path $PSHOME 'pwsh' }
}

function New-TestHost {
    param([Parameter(Mandatory)][string]$Directory, [string]$Name = 'criups-mv', [int]$Octet = 0)
    foreach ($program in 'sshd', 'unshare', 'nsenter', 'ssh-keygen', 'ip') {
        if (-not (Get-Command $program -CommandType Application -ErrorAction Ignore) -and -not (Test-Path "/usr/sbin/$program")) { throw "$program is missing (openssh-server, util-linux, iproute2)" }
    }
    New-Item -ItemType Directory -Force $Directory | Out-Null
    & chmod 700 $Directory
    $sourceIp = "$script:Subnet.$($Octet + 1)"
    $destinationIp = "$script:Subnet.$($Octet + 2)"
    $hostKey = Join-Path $Directory 'host_key'
    $clientKey = Join-Path $Directory 'client_key'
    Invoke-Checked 'ssh-keygen (host key)' ssh-keygen -q -t ed25519 -N '' -f $hostKey | Out-Null
    Invoke-Checked 'ssh-keygen (client key)' ssh-keygen -q -t ed25519 -N '' -f $clientKey -C 'criups-test-client' | Out-Null
    Copy-Item "$clientKey.pub" (Join-Path $Directory 'authorized_keys')
    $knownHosts = Join-Path $Directory 'known_hosts'
    Set-Content $knownHosts "$destinationIp $((Get-Content "$hostKey.pub" -Raw).Trim())"
    $config = Join-Path $Directory 'sshd_config'
    Set-Content $config @"
ListenAddress $destinationIp
HostKey $hostKey
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile $(Join-Path $Directory 'authorized_keys')
StrictModes no
UsePAM no
PidFile none
Subsystem sftp /usr/lib/openssh/sftp-server
Subsystem powershell $(Get-PwshPath) -sshs -NoLogo -NoProfile
Subsystem powershell-limited $((Get-Command setpriv -CommandType Application).Source) --bounding-set=-checkpoint_restore,-sys_admin --inh-caps=-checkpoint_restore,-sys_admin $(Get-PwshPath) -sshs -NoLogo -NoProfile
"@
    New-Item -ItemType Directory -Force /run/sshd | Out-Null # sshd's privilege separation directory
    $go = Join-Path $Directory 'go'
    $log = Join-Path $Directory 'sshd.log'
    $sshd = (Get-Command sshd -CommandType Application -ErrorAction Ignore | Select-Object -First 1).Source ?? '/usr/sbin/sshd'
    # sshd becomes PID 1 of the new PID namespace (it reaps what is orphaned there) once the veth end is in place.
    $unshare = Start-Process unshare -ArgumentList '--net', '--pid', '--mount', '--fork', '--mount-proc', '--propagation', 'private', '/bin/sh', '-c',
        "`"while [ ! -e $go ]; do sleep 0.02; done; exec $sshd -D -e -f $config`"" -PassThru -RedirectStandardError $log -RedirectStandardOutput (Join-Path $Directory 'sshd.out')
    $deadline = [DateTime]::UtcNow.AddSeconds(10)
    $init = 0
    while ($init -eq 0) {
        if ([DateTime]::UtcNow -gt $deadline) { throw 'unshare did not start the destination' }
        $children = Get-Content "/proc/$($unshare.Id)/task/$($unshare.Id)/children" -ErrorAction Ignore
        if ($children) { $init = [int]($children.Trim() -split ' ')[0] } else { Start-Sleep -Milliseconds 10 }
    }
    $hostEnd = "$Name-s"
    & ip link delete $hostEnd 2>$null
    Invoke-Checked 'ip link add' ip link add $hostEnd type veth peer name "$Name-d" netns $init
    Invoke-Checked 'ip addr add' ip addr add "$sourceIp/30" dev $hostEnd
    Invoke-Checked 'ip link set up' ip link set $hostEnd up
    Invoke-Checked 'ip addr add (destination)' nsenter "--target=$init" --net ip addr add "$destinationIp/30" dev "$Name-d"
    Invoke-Checked 'ip link set up (destination)' nsenter "--target=$init" --net ip link set "$Name-d" up
    Invoke-Checked 'lo up (destination)' nsenter "--target=$init" --net ip link set lo up
    Set-Content $go ''
    $testHost = [pscustomobject]@{
        Directory = $Directory; Init = $init; Unshare = $unshare; HostEnd = $hostEnd; SourceIp = $sourceIp; DestinationIp = $destinationIp
        KeyFilePath = $clientKey; KnownHosts = $knownHosts; Log = $log
        SshOptions = @{ UserKnownHostsFile = $knownHosts; StrictHostKeyChecking = 'yes'; GlobalKnownHostsFile = '/dev/null'; BatchMode = 'yes' }
    }
    $deadline = [DateTime]::UtcNow.AddSeconds(10)
    while (-not (Test-NetConnection22 $destinationIp)) {
        if ([DateTime]::UtcNow -gt $deadline) { throw "sshd did not listen on $($destinationIp):22: $(Get-Content $log -Raw)" }
        Start-Sleep -Milliseconds 20
    }
    $testHost
}

function Test-NetConnection22([string]$Address) {
    $client = [System.Net.Sockets.TcpClient]::new()
    try { $client.ConnectAsync($Address, 22).Wait(200) -and $client.Connected } catch { $false } finally { $client.Dispose() }
}

# A PowerShell session to the destination, over SSH as root with the generated key and known_hosts.
function New-TestHostSession([Parameter(Mandatory)]$TestHost) {
    New-PSSession -HostName $TestHost.DestinationIp -UserName root -KeyFilePath $TestHost.KeyFilePath -Options $TestHost.SshOptions -ErrorAction Stop
}

# Runs a command inside the destination's namespaces (network, PID, mount), as a process of that machine.
function Invoke-InTestHost([Parameter(Mandatory)]$TestHost, [Parameter(Mandatory)][string[]]$Command) {
    & nsenter "--target=$($TestHost.Init)" --net --pid --mount @Command
}

# A third machine, a client of a service on the source whose address can move to the destination (Move-Process
# -ServiceAddress): a network namespace of its own (ip netns) joined to the source by a veth pair, routed through the
# source, which forwards between the client's link and the destination's (forwarding on these two links only) and
# holds a route to the service address through the destination. While the source holds the address, its local route
# wins and the source answers; once the address is the destination's alone, the source forwards the client's packets
# there, and the destination answers the client through the source. Returns the client's namespace and the address.
function New-TestClient {
    param([Parameter(Mandatory)]$TestHost, [string]$Name = 'criups-mvc', [string]$ServiceAddress = '10.77.19.1')
    $hostEnd = "$Name-s"
    & ip link delete $hostEnd 2>$null
    & ip netns delete $Name 2>$null
    Invoke-Checked 'ip netns add' ip netns add $Name
    Invoke-Checked 'ip link add (client)' ip link add $hostEnd type veth peer name "$Name-c" netns $Name
    Invoke-Checked 'ip addr add (client link)' ip addr add 10.77.18.1/30 dev $hostEnd
    Invoke-Checked 'ip link set up (client link)' ip link set $hostEnd up
    Invoke-Checked 'ip addr add (client)' ip -n $Name addr add 10.77.18.2/30 dev "$Name-c"
    Invoke-Checked 'ip link set up (client)' ip -n $Name link set "$Name-c" up
    Invoke-Checked 'lo up (client)' ip -n $Name link set lo up
    Invoke-Checked 'default route (client)' ip -n $Name route add default via 10.77.18.1
    foreach ($link in $hostEnd, $TestHost.HostEnd) { Invoke-Checked 'forwarding' sysctl -qw "net.ipv4.conf.$link.forwarding=1" | Out-Null }
    Invoke-Checked 'route to the service' ip route add "$ServiceAddress/32" via $TestHost.DestinationIp
    Invoke-Checked 'route to the client (destination)' nsenter "--target=$($TestHost.Init)" --net ip route add 10.77.18.0/30 via $TestHost.SourceIp
    Invoke-Checked 'service address' ip addr add "$ServiceAddress/32" dev $hostEnd
    [pscustomobject]@{ Namespace = $Name; HostEnd = $hostEnd; ServiceAddress = $ServiceAddress; ClientIp = '10.77.18.2' }
}

# Removes the client's namespace and link, the route to the service and the service address wherever it is here.
function Remove-TestClient([Parameter(Mandatory)]$Client) {
    & ip route delete "$($Client.ServiceAddress)/32" 2>$null
    & ip link delete $Client.HostEnd 2>$null
    & ip netns delete $Client.Namespace 2>$null
}

# Kills every process of the destination (PID 1 of its namespace takes them all), removes the veth pair and the files.
function Remove-TestHost([Parameter(Mandatory)]$TestHost) {
    & kill -s KILL $TestHost.Init 2>$null
    if (-not $TestHost.Unshare.WaitForExit(10000)) { $TestHost.Unshare.Kill() }
    & ip link delete $TestHost.HostEnd 2>$null
    Remove-Item -Recurse -Force $TestHost.Directory -ErrorAction Ignore
}

Export-ModuleMember -Function New-TestHost, New-TestHostSession, Invoke-InTestHost, Remove-TestHost, New-TestClient, Remove-TestClient
