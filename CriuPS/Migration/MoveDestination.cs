using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using CriuPS.Engine.Errors;

namespace CriuPS.Migration;

/// <summary>
/// The destination of Move-Process, reached through a PowerShell session: every call runs a script in the
/// session's runspace (Invoke-Command's way), where CriuPS is imported and the move's page servers and
/// certificate live between calls. This is the only place that talks to the other machine; the rest of a move is the
/// engine's (ProcessMove).
/// </summary>
internal sealed class MoveDestination
{
    private readonly PSSession session;
    private readonly IReadOnlyList<System.Net.IPAddress> serviceAddresses;

    private readonly string modulePath;

    /// <param name="modulePath">Where CriuPS is here: the destination imports it from the same path when not in its PSModulePath.</param>
    public MoveDestination(PSSession session, string directory, IReadOnlyList<System.Net.IPAddress> serviceAddresses, string modulePath)
    {
        this.modulePath = modulePath;
        this.session = session;
        this.serviceAddresses = serviceAddresses;
        Directory = directory;
    }

    public string ComputerName => session.ComputerName;

    /// <summary>The move's directory there: one image per round, then the final one.</summary>
    public string Directory { get; }

    /// <summary>
    /// Imports CriuPS there and checks that it can take the tree: the same kernel family, checkpoint support, the
    /// source's CPU, the PIDs free, the files present. Returns the problems found (none: it can), and PIDs taken apart.
    /// </summary>
    public (List<string> Problems, List<int> PidsTaken) Check(string modulePath, string version, IReadOnlyList<int> ids, IReadOnlyList<string> files, IReadOnlyList<System.Net.IPAddress> addresses, byte[] cpu, string kernel)
    {
        var result = (Hashtable)Run("""
            param($ModulePath, $Version, $Ids, $Files, $Addresses, $Cpu, $Kernel, $Directory)
            $problems = [System.Collections.Generic.List[string]]::new()
            if (-not (Get-Module CriuPS)) {
                Import-Module CriuPS -MinimumVersion $Version -ErrorAction Ignore
                if (-not (Get-Module CriuPS) -and (Test-Path $ModulePath)) { Import-Module $ModulePath -ErrorAction Ignore }
            }
            if (-not (Get-Module CriuPS)) {
                $problems.Add("the CriuPS module ($Version or later) cannot be imported there (not in PSModulePath, nor at $ModulePath)")
                return @{ Problems = $problems.ToArray(); Taken = @() }
            }
            $here = "$([Environment]::OSVersion.Platform) $([System.Runtime.InteropServices.RuntimeInformation]::OSArchitecture) $(([Environment]::OSVersion.Version).Major)"
            if ($here -ne $Kernel) { $problems.Add("its kernel is $here, the source's $Kernel") }
            $missing = @(Test-CheckpointSupport | Where-Object { $_.Essential -and -not $_.Available })
            if ($missing) { $problems.Add("it lacks what checkpoints need: $(($missing | ForEach-Object { "$($_.Name) ($($_.Detail))" }) -join '; ')") }
            # A restore gives the PIDs with clone3 set_tid and sets the executable with PR_SET_MM_MAP: either capability will do.
            $restoring = @(Test-CheckpointSupport -Name CAP_CHECKPOINT_RESTORE, CAP_SYS_ADMIN)
            if (-not ($restoring | Where-Object Available)) { $problems.Add("its session can restore nothing: $(($restoring | ForEach-Object { "$($_.Name): $($_.Detail)" }) -join '; ')") }
            $fit = [CriuPS.Engine.Resources.Cpu.CpuFit]::CheckDescription($Cpu, 'the source')
            if (-not $fit.Fits) { $problems.Add("its CPU ($($fit.ThisCpu)) lacks what the source's uses: $($fit.MissingFeatures -join ', ')") }
            $absent = @($Files | Where-Object { -not (Test-Path -LiteralPath $_) })
            if ($absent) { $problems.Add("files the process uses are missing there: $($absent -join ', ')") }
            $held = @($Addresses | Where-Object { $null -ne [CriuPS.Engine.Migration.ServiceAddress]::Find([System.Net.IPAddress]::Parse($_)) })
            if ($held) { $problems.Add("the service address(es) $($held -join ', ') are in use there already") }
            if (Test-Path -LiteralPath $Directory) { $problems.Add("the move's directory $Directory exists there already") }
            $taken = @($Ids | Where-Object { Test-Path "/proc/$_" })
            @{ Problems = $problems.ToArray(); Taken = $taken }
            """, modulePath, version, ids.ToArray(), files.ToArray(), addresses.Select(a => a.ToString()).ToArray(), cpu, kernel, Directory)!.BaseObject;
        // Deserialized arrays arrive wrapped (PSObject around an ArrayList): PowerShell's own conversion unwraps them.
        var problems = LanguagePrimitives.ConvertTo<string[]>(result["Problems"]) ?? [];
        var taken = LanguagePrimitives.ConvertTo<int[]>(result["Taken"]) ?? [];
        return (problems.ToList(), taken.ToList());
    }

    /// <summary>
    /// Starts the page server of one round there, on the address the session's SSH connection arrived at, speaking
    /// TLS with a certificate made there for this move, accepting only the client certificate with
    /// <paramref name="clientThumbprint"/>. Returns where it listens and the thumbprint of its certificate (to pin).
    /// </summary>
    public (string Address, int Port, string Thumbprint) StartServer(string round, string? parent, string clientThumbprint)
    {
        var server = (Hashtable)Run("""
            param($Directory, $Round, $Parent, $ClientThumbprint)
            if (-not $script:CriuPSMoveCertificate) {
                $address = if ($env:SSH_CONNECTION) { ($env:SSH_CONNECTION -split ' ')[2] } else { '127.0.0.1' }
                $key = [System.Security.Cryptography.ECDsa]::Create([System.Security.Cryptography.ECCurve+NamedCurves]::nistP256)
                $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new("CN=criups-move-$address", $key, 'SHA256')
                $script:CriuPSMoveCertificate = $request.CreateSelfSigned([DateTimeOffset]::Now.AddMinutes(-5), [DateTimeOffset]::Now.AddDays(1))
                $script:CriuPSMoveAddress = $address
                $script:CriuPSMoveServers = [System.Collections.Generic.List[object]]::new()
                New-Item -ItemType Directory -Path $Directory -Force | Out-Null
                & chmod 700 $Directory
            }
            $arguments = @{ ImagePath = (Join-Path $Directory $Round); Address = $script:CriuPSMoveAddress; Certificate = $script:CriuPSMoveCertificate; ClientThumbprint = $ClientThumbprint; ErrorAction = 'Stop' }
            if ($Parent) { $arguments.ParentImage = $Parent }
            $server = Start-LazyPageServer @arguments
            $script:CriuPSMoveServers.Add($server)
            @{ Address = $server.Address; Port = $server.Port; Thumbprint = $server.CertificateThumbprint }
            """, Directory, round, parent, clientThumbprint)!.BaseObject;
        return ((string)server["Address"]!, Convert.ToInt32(server["Port"]), (string)server["Thumbprint"]!);
    }

    /// <summary>
    /// Checkpoints and restores a sleep of its own there (lazily with <paramref name="lazy"/>), and kills it: the
    /// first restore in a PowerShell compiles what it runs, and this one is not in anybody's downtime. Best effort:
    /// returns what went wrong, if anything, for a verbose line.
    /// </summary>
    public string? Rehearse(bool lazy)
    {
        try
        {
            Run("""
                param($Directory, $Lazy)
                New-Item -ItemType Directory -Force $Directory | Out-Null
                $work = Join-Path $Directory '.rehearsal'
                $pidFile = Join-Path $Directory '.rehearsal-pid'
                & setsid -f /bin/sh -c "echo `$`$ > $pidFile; exec sleep 1000 < /dev/null > /dev/null 2>&1"
                $deadline = (Get-Date).AddSeconds(5)
                while (-not (Get-Content $pidFile -ErrorAction Ignore) -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 10 }
                $sleep = [int](Get-Content $pidFile)
                try {
                    # As a move restores: a final image on top of a pre-dump, so that the chain's code is compiled too.
                    $pre = Checkpoint-Process -Id $sleep -ImagePath "$work-pre" -PreDump -ErrorAction Stop
                    Checkpoint-Process -Id $sleep -ImagePath $work -ParentImage $pre -ErrorAction Stop | Out-Null
                    $restored = Restore-Process -ImagePath $work -Detach -LazyPages:$Lazy -ErrorAction Stop
                    if ($Lazy) { $restored | Wait-LazyRestore -Timeout 30 | Out-Null }
                    Stop-Process -Id $restored.Id -Force
                }
                finally {
                    Stop-Process -Id $sleep -Force -ErrorAction Ignore
                    Remove-Item -Recurse -Force $work, "$work-pre", $pidFile -ErrorAction Ignore
                }
                """, Directory, lazy);
            return null;
        }
        catch (RemoteFailure e)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// The destination's half of a rehearsal move (MoveRehearsal): restores the sleep sent to <paramref name="image"/>
    /// with the very call that will restore the process (<see cref="Restore"/>: its script is parsed and its cmdlets'
    /// binding compiled there now, not in the downtime), lazily with <paramref name="lazy"/>, kills it, stops the
    /// rehearsal's page servers and removes its images. Throws what went wrong.
    /// </summary>
    /// <param name="source">A post-copy rehearsal: the source's server of the held sleep's memory.</param>
    public void RehearseRestore(string image, bool lazy, PostCopySource? source = null)
    {
        try
        {
            Restore(image, lazy, tcpEstablished: false, source, _ => 0, rehearsal: true);
        }
        finally
        {
            Run("""
                param($Lazy, $Directory)
                try {
                    if ($script:CriuPSMoveRestored) {
                        if ($Lazy) { $script:CriuPSMoveRestored | Wait-LazyRestore -Timeout 30 | Out-Null }
                        Stop-Process -Id $script:CriuPSMoveRestored.Id -Force
                    }
                }
                finally {
                    $script:CriuPSMoveRestored = $null
                    # Only the rehearsal's servers were started so far.
                    if ($script:CriuPSMoveServers) { $script:CriuPSMoveServers | Stop-LazyPageServer; $script:CriuPSMoveServers.Clear() }
                    Get-ChildItem -LiteralPath $Directory -Filter 'rehearsal*' -Force | Remove-Item -Recurse -Force
                }
                """, lazy || source is not null, Directory);
        }
    }

    /// <summary>
    /// Gives the service addresses to the interface there that holds the address the session arrived at (the link the
    /// move goes over; each is taken away again if the move fails, <see cref="Clean"/>), then restores the final image
    /// there, detached from the session, lazily when asked (the process runs at once, its memory filled from the image
    /// as it touches it and in the background); returns the PID it runs with there. One call: one round trip in the
    /// downtime.
    /// </summary>
    /// <param name="source">Post-copy: the lazy pages come from this server of the source's held processes, not from the image there.</param>
    /// <param name="prefixLength">The prefix length of each service address here.</param>
    /// <param name="rehearsal">The rehearsal's restore (<see cref="RehearseRestore"/>): no service address.</param>
    public int Restore(string image, bool lazy, bool tcpEstablished, PostCopySource? source, Func<System.Net.IPAddress, byte> prefixLength, bool rehearsal = false)
    {
        IReadOnlyList<System.Net.IPAddress> addresses = rehearsal ? [] : serviceAddresses;
        var restored = Run("""
            param($Image, $Lazy, $TcpEstablished, $Source, $Thumbprint, $Addresses, $Prefixes)
            # The service addresses are there before the restore binds to them.
            if ($Addresses) {
                $arrived = if ($env:SSH_CONNECTION) { ($env:SSH_CONNECTION -split ' ')[2] } else { '127.0.0.1' }
                for ($i = 0; $i -lt $Addresses.Count; $i++) {
                    [CriuPS.Engine.Migration.ServiceAddress]::Add([System.Net.IPAddress]::Parse($Addresses[$i]), $Prefixes[$i], [System.Net.IPAddress]::Parse($arrived))
                }
            }
            $from = @{}
            if ($Source) { $from = @{ PageServer = $Source; PageServerThumbprint = $Thumbprint; ClientCertificate = $script:CriuPSMoveClientCertificate } }
            $script:CriuPSMoveRestored = Restore-Process -ImagePath $Image -Detach -LazyPages:$Lazy -TcpEstablished:$TcpEstablished @from -ErrorAction Stop
            $script:CriuPSMoveRestored.Id
            """, image, lazy || source is not null, tcpEstablished, source?.Server, source?.Thumbprint,
            addresses.Select(a => a.ToString()).ToArray(), addresses.Select(prefixLength).ToArray());
        return Convert.ToInt32(restored!.BaseObject);
    }

    /// <summary>
    /// The address of this machine that the session came from, as seen there (the source's end of the link), and the
    /// thumbprint of the certificate the destination presents to the source's server of held memory (post-copy).
    /// </summary>
    public (System.Net.IPAddress Address, string Thumbprint) PostCopyClient()
    {
        var result = (Hashtable)Run("""
            if (-not $script:CriuPSMoveClientCertificate) {
                # Exported and loaded again: TLS on Linux needs a certificate whose key is not ephemeral.
                $key = [System.Security.Cryptography.ECDsa]::Create([System.Security.Cryptography.ECCurve+NamedCurves]::nistP256)
                $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=criups-move-destination', $key, 'SHA256')
                $made = $request.CreateSelfSigned([DateTimeOffset]::Now.AddMinutes(-5), [DateTimeOffset]::Now.AddDays(1))
                $script:CriuPSMoveClientCertificate = [System.Security.Cryptography.X509Certificates.X509CertificateLoader]::LoadPkcs12($made.Export('Pkcs12'), $null)
            }
            $from = if ($env:SSH_CONNECTION) { ($env:SSH_CONNECTION -split ' ')[0] } else { '127.0.0.1' }
            @{ Address = $from; Thumbprint = $script:CriuPSMoveClientCertificate.Thumbprint }
            """)!.BaseObject;
        return (System.Net.IPAddress.Parse((string)result["Address"]!), (string)result["Thumbprint"]!);
    }

    /// <summary>
    /// Right before the final freeze: waits there until the runtime has recompiled what the rehearsal made hot
    /// (<see cref="Engine.Migration.RuntimeQuiet"/>), so that the restore does not share the CPU with it; says what it waited.
    /// </summary>
    public string Settle() => (string)Run("[CriuPS.Engine.Migration.RuntimeQuiet]::Wait()")!.BaseObject;

    /// <summary>
    /// Waits until a lazy restore there has every page and the copy still runs; fails with its state and the pages
    /// that had arrived otherwise (the source ends on success: a copy that ended there meanwhile, even with every
    /// page in, would be the process lost).
    /// </summary>
    public void WaitForMemory(TimeSpan timeout) => Run("""
        param($Seconds)
        $id = $script:CriuPSMoveRestored.Id
        $lazy = $script:CriuPSMoveRestored | Wait-LazyRestore -Timeout $Seconds -ErrorAction Stop
        $arrived = "$($lazy.PagesOnFault + $lazy.PagesInBackground) of $($lazy.PagesTotal) pages arrived"
        if ($lazy.State -ne 'Completed') { Write-Error -ErrorId LazyRestoreIncomplete "The lazy restore of $id ended $($lazy.State) with $arrived$(if ($lazy.Error) { ": $($lazy.Error.Message)" })"; return }
        $stat = Get-Content -LiteralPath "/proc/$id/stat" -Raw -ErrorAction Ignore
        if (-not $stat -or $stat.Substring($stat.LastIndexOf(')') + 2, 1) -in 'Z', 'X') { Write-Error -ErrorId CopyEnded "The copy $id completed its lazy restore ($arrived) but no longer runs there" }
        """, (int)timeout.TotalSeconds);

    /// <summary>
    /// After a move that worked: stops its servers and keeps only the logs of the images (the pages are in the
    /// process now). After one that failed: removes everything of it. Best effort: the session may be gone.
    /// </summary>
    /// <param name="restored">The PID of the copy there, to kill even from a new connection (the session's own variables lost with it).</param>
    public string? Clean(bool keepLogs, int? restored = null)
    {
        Runspace? runspace = null;
        try
        {
            runspace = Usable();
            Run(runspace, """
                param($Directory, $KeepLogs, $Addresses, $ModulePath, $Restored)
                if (-not $KeepLogs -and $Restored) { Stop-Process -Id $Restored -Force -ErrorAction Ignore }
                if ($script:CriuPSMoveServers) { $script:CriuPSMoveServers | Stop-LazyPageServer }
                # A move that failed after the restore (its memory never all there): the copy must not run on beside the source.
                if (-not $KeepLogs -and $script:CriuPSMoveRestored) { Stop-Process -Id $script:CriuPSMoveRestored.Id -Force -ErrorAction Ignore }
                # Nor the service addresses: they were not there before the move (Check), the source keeps them.
                if (-not $KeepLogs -and $Addresses -and -not (Get-Module CriuPS)) { Import-Module $ModulePath -ErrorAction Stop }
                if (-not $KeepLogs) { $Addresses | ForEach-Object { [CriuPS.Engine.Migration.ServiceAddress]::Remove([System.Net.IPAddress]::Parse($_)) } }
                $script:CriuPSMoveServers = $null; $script:CriuPSMoveCertificate = $null; $script:CriuPSMoveRestored = $null; $script:CriuPSMoveClientCertificate = $null
                if (-not (Test-Path -LiteralPath $Directory)) { return }
                if ($KeepLogs) { Get-ChildItem -LiteralPath $Directory -Recurse -File -Exclude '*.log' | Remove-Item -Force }
                else { Remove-Item -LiteralPath $Directory -Recurse -Force }
                """, Directory, keepLogs, serviceAddresses.Select(a => a.ToString()).ToArray(), modulePath, restored);
            return null;
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            return e.Message;
        }
        finally
        {
            if (runspace is not null && runspace != session.Runspace)
            {
                runspace.Dispose();
            }
        }
    }

    /// <summary>Test hook (FailureInjection.MoveSessionLost): the session's PowerShell there is killed, and this waits until the session knows it.</summary>
    /// <remarks>
    /// It is killed from a connection of its own while this session is idle. Killed from within a command of its own,
    /// it took this PowerShell with it at times: PowerShell's SSH transport, when the pipe to ssh breaks with part of a
    /// message still buffered, throws an IOException on its error thread that nothing catches.
    /// </remarks>
    public void Die()
    {
        var remoteProcess = Run("$PID")!.BaseObject;
        using (var killer = RunspaceFactory.CreateRunspace(session.Runspace.ConnectionInfo))
        {
            killer.Open();
            Run(killer, "Stop-Process -Id $args[0] -Force", remoteProcess);
        }
        // The runspace says when its state changes: wait for that rather than looking again and again.
        using var broken = new ManualResetEventSlim();
        EventHandler<RunspaceStateEventArgs> changed = (_, e) =>
        {
            if (e.RunspaceStateInfo.State != RunspaceState.Opened)
            {
                broken.Set();
            }
        };
        session.Runspace.StateChanged += changed;
        try
        {
            if (session.Runspace.RunspaceStateInfo.State == RunspaceState.Opened)
            {
                broken.Wait(TimeSpan.FromSeconds(10));
            }
        }
        finally
        {
            session.Runspace.StateChanged -= changed;
        }
    }

    // After a failure the session may be broken (its PowerShell there died): a new connection like it still
    // reaches the machine, to clean up. The module is imported there again only if needed (Stop-LazyPageServer).
    private Runspace Usable()
    {
        if (session.Runspace.RunspaceStateInfo.State == RunspaceState.Opened)
        {
            return session.Runspace;
        }
        var fresh = RunspaceFactory.CreateRunspace(session.Runspace.ConnectionInfo);
        fresh.Open();
        return fresh;
    }

    private PSObject? Run(string script, params object?[] arguments) => Run(session.Runspace, script, arguments);

    private PSObject? Run(Runspace runspace, string script, params object?[] arguments)
    {
        if (runspace.RunspaceStateInfo.State != RunspaceState.Opened)
        {
            throw new CheckpointException(CheckpointErrorKind.PageServerUnavailable, $"The session to {ComputerName} is {runspace.RunspaceStateInfo.State}.", ComputerName);
        }
        using var shell = PowerShell.Create();
        shell.Runspace = runspace;
        shell.AddScript(script);
        foreach (var argument in arguments)
        {
            shell.AddArgument(argument);
        }
        System.Collections.ObjectModel.Collection<PSObject> output;
        try
        {
            output = shell.Invoke();
        }
        catch (RuntimeException e) when (e is not PipelineStoppedException && e.ErrorRecord is not null)
        {
            // A terminating error there (-ErrorAction Stop) arrives as an exception with the remote error record.
            throw new RemoteFailure(ComputerName, e.ErrorRecord);
        }
        if (shell.HadErrors && shell.Streams.Error.Count > 0)
        {
            var error = shell.Streams.Error[0];
            throw new RemoteFailure(ComputerName, error);
        }
        return output.Count > 0 ? output[^1] : null;
    }
}

/// <summary>An error the destination reported, with its id there (RestoreFailed, PidInUse...).</summary>
internal sealed class RemoteFailure(string computer, ErrorRecord error) : Exception($"{computer}: {error.Exception.Message}", error.Exception)
{
    public ErrorRecord Error { get; } = error;

    /// <summary>The error id on the destination, without the command's name.</summary>
    public string Id => Error.FullyQualifiedErrorId.Split(',')[0];
}

/// <summary>Where the copy of a post-copy move fetches its pages: the source's server of the held memory, pinned.</summary>
internal sealed record PostCopySource(string Server, string Thumbprint);
