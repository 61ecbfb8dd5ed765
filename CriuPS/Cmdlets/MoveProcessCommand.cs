using System.Diagnostics;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CriuPS.Completers;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Migration;
using CriuPS.Engine.Model;
using CriuPS.Engine.PageServer;
using CriuPS.Engine.Resources.Cpu;
using CriuPS.Migration;

namespace CriuPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Moves a running process tree to another machine through a PowerShell session: pre-dump rounds while it runs, a short final freeze, restored there.</para>
/// </summary>
[Cmdlet(VerbsCommon.Move, "Process", DefaultParameterSetName = BySession, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(MovedProcess))]
public sealed class MoveProcessCommand : PSCmdlet, IDisposable
{
    private const string BySession = "Session";
    private const string ByHostName = "HostName";
    private const int ProgressActivityId = 2;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Pid", "ProcessId")]
    [ValidateRange(1, int.MaxValue)]
    [ArgumentCompleter(typeof(ProcessIdCompleter))]
    public int Id { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = BySession)]
    public PSSession? Session { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ByHostName)]
    public string HostName { get; set; } = "";

    [Parameter(ParameterSetName = ByHostName)]
    public string? UserName { get; set; }

    [Parameter(ParameterSetName = ByHostName)]
    public string? KeyFilePath { get; set; }

    /// <summary>With -HostName: SSH options for the session (New-PSSession -Options), such as UserKnownHostsFile.</summary>
    [Parameter(ParameterSetName = ByHostName)]
    public System.Collections.Hashtable? Options { get; set; }

    /// <summary>Pre-dump rounds at most before the final dump.</summary>
    [Parameter]
    [ValidateRange(0, 100)]
    public int MaxRounds { get; set; } = new MoveOptions { ProcessId = 1 }.MaxRounds;

    /// <summary>Milliseconds of freeze that end the rounds when a round predicts no more.</summary>
    [Parameter]
    [ValidateRange(1, 3_600_000)]
    public int MaxDowntime { get; set; } = (int)new MoveOptions { ProcessId = 1 }.MaxDowntime.TotalMilliseconds;

    /// <summary>Restore there lazily: the process runs once its state is there, its memory filled in behind it.</summary>
    [Parameter]
    public SwitchParameter Lazy { get; set; }

    /// <summary>
    /// Post-copy: no pre-dump rounds; the final dump sends everything but the memory a lazy restore can fill, the
    /// process runs there at once and pulls those pages from the source's memory, held stopped here until they have
    /// all arrived. A link lost meanwhile loses the process.
    /// </summary>
    [Parameter]
    public SwitchParameter PostCopy { get; set; }

    /// <summary>Seconds a lazy restore there may take to have every page.</summary>
    [Parameter]
    [ValidateRange(1, 86400)]
    public int LazyTimeout { get; set; } = 300;

    /// <summary>Carry the tree's established TCP connections: locked and in repair mode from the final dump, restored so there.</summary>
    [Parameter]
    public SwitchParameter TcpEstablished { get; set; }

    /// <summary>Move TCP listeners with connections not accepted yet, dropping those connections (at each dump).</summary>
    [Parameter]
    public SwitchParameter SkipInFlight { get; set; }

    /// <summary>
    /// Addresses of this machine that move with the tree (the ones its clients connect to): taken from their interface
    /// here once the tree runs there, given with the same prefix length to the interface that holds the session's address there.
    /// </summary>
    [Parameter]
    public System.Net.IPAddress[] ServiceAddress { get; set; } = [];

    /// <summary>The move's directory on the destination.</summary>
    [Parameter]
    public string? DestinationPath { get; set; }

    private readonly CancellationTokenSource stopping = new();

    protected override void StopProcessing() => stopping.Cancel();

    public void Dispose() => stopping.Dispose();

    protected override void ProcessRecord()
    {
        var opened = ParameterSetName == ByHostName ? OpenSession() : null;
        var session = Session ?? opened!;
        try
        {
            var directory = DestinationPath ?? $"/tmp/criups-move-{Id}-{Guid.NewGuid():N}";
            if (!ShouldProcess($"process {Id}", $"Move to {session.ComputerName} (through {directory} there) and end it here"))
            {
                return;
            }
            var moved = Move(new MoveDestination(session, directory, ServiceAddress, MyInvocation.MyCommand.Module.Path));
            if (moved is not null)
            {
                WriteObject(moved);
            }
        }
        finally
        {
            if (opened is not null)
            {
                InvokeCommand.InvokeScript("param($s) Remove-PSSession $s", true, PipelineResultTypes.None, null, opened);
            }
        }
    }

    private MovedProcess? Move(MoveDestination destination)
    {
        var name = File.Exists($"/proc/{Id}/comm") ? File.ReadAllText($"/proc/{Id}/comm").Trim() : "";
        if (name.Length == 0)
        {
            WriteError(ErrorRecords.From(new CheckpointException(CheckpointErrorKind.ProcessNotFound, $"There is no process {Id}.", Id), Id));
            return null;
        }
        // 1. The destination first: anything it lacks is refused before the process is touched.
        WriteVerbose($"Checking {destination.ComputerName}");
        var module = MyInvocation.MyCommand.Module;
        var notHere = ServiceAddress.Where(a => Engine.Migration.ServiceAddress.Find(a) is null).ToList();
        if (notHere.Count > 0)
        {
            Fail(CheckpointErrorKind.DestinationUnsuitable, $"Process {Id} ({name}) cannot be moved with its service address(es) {string.Join(", ", notHere)}: no interface of this machine holds them. Nothing was done.",
                "Name in -ServiceAddress only addresses of this machine's interfaces (ip address shows them).");
            return null;
        }
        var (problems, taken) = destination.Check(module.Path, module.Version.ToString(), SourceFacts.Ids(Id), SourceFacts.Files(Id), ServiceAddress,
            CpuFit.ThisCpuDescription(), $"{Environment.OSVersion.Platform} {System.Runtime.InteropServices.RuntimeInformation.OSArchitecture} {Environment.OSVersion.Version.Major}");
        if (problems.Count > 0)
        {
            Fail(CheckpointErrorKind.DestinationUnsuitable, $"{destination.ComputerName} cannot take process {Id} ({name}): {string.Join("; ", problems)}. Nothing was done.",
                "Prepare the destination: install CriuPS there, and make the files the process uses available at the same paths.");
            return null;
        }
        if (taken.Count > 0)
        {
            // The seam for PID namespaces: with a new PID namespace there (not yet offered), taken PIDs would not matter.
            Fail(CheckpointErrorKind.PidInUse, $"{destination.ComputerName} cannot take process {Id} ({name}): PID(s) {string.Join(", ", taken)} of its tree are in use there. Nothing was done.",
                "End the processes that hold these PIDs on the destination, or move the process to another machine.");
            return null;
        }

        // 2. Rounds while it runs, each into a page server there, over TLS pinned both ways through the session.
        using var client = NewClientCertificate();
        var move = new ProcessMove(new MoveOptions
        {
            ProcessId = Id,
            MaxRounds = MaxRounds,
            MaxDowntime = TimeSpan.FromMilliseconds(MaxDowntime),
            Cancellation = stopping.Token,
            FailAt = FailureInjection.RequestedPoint,
            TcpEstablished = TcpEstablished,
            SkipInFlight = SkipInFlight,
        });
        HeldTree? held = null;
        HeldMemoryServer? postCopy = null;
        int? restored = null;
        try
        {
            if (RehearseMove(destination, client) is { } failedMove)
            {
                WriteVerbose($"The rehearsal move of a sleep to {destination.ComputerName} failed ({failedMove}): rehearsing a restore there alone");
                if (destination.Rehearse(Lazy) is { } rehearsal)
                {
                    WriteVerbose($"The rehearsal of a restore on {destination.ComputerName} failed (the restore there will compile its code in the downtime): {rehearsal}");
                }
            }
            long bytes = 0;
            // Post-copy takes no rounds: every page it leaves behind comes from the held memory, however recent.
            while (!PostCopy && move.Rounds.Count < MaxRounds && move.Enough() is null)
            {
                var round = EngineRunner.Run(this, $"Moving {name} ({Id}) to {destination.ComputerName}: round {move.Rounds.Count + 1}",
                    observer => move.PreDump(Endpoint(destination, $"round-{move.Rounds.Count + 1}", move.ParentPath, client), observer));
                bytes += (long)round.BytesSent.Value;
                WriteProgress(new ProgressRecord(ProgressActivityId, $"Moving {name} ({Id}) to {destination.ComputerName}",
                    $"round {round.Number}: {round.Pages:N0} pages in {round.Duration.TotalSeconds:F2} s ({round.BytesPerSecond / (1 << 20):F0} MiB/s), predicted downtime {round.PredictedDowntime.TotalMilliseconds:F0} ms"));
                WriteVerbose($"Round {round.Number}: {round.Pages} pages, {round.BytesSent.Value >> 20} MiB in {round.Duration.TotalMilliseconds:F0} ms, predicted downtime {round.PredictedDowntime.TotalMilliseconds:F0} ms");
            }
            WriteVerbose($"Final dump: {(PostCopy ? "post-copy" : move.Enough() ?? "no pre-dump rounds asked for")}");

            // 3. The final dump: the process is frozen, sent, and held stopped here until it runs there (post-copy:
            // its memory served from here, by a server started before the freeze).
            var endpoint = Endpoint(destination, "final", move.ParentPath, client);
            postCopy = PostCopy ? HeldMemoryServer.Start(destination, client, Id, FailureInjection.RequestedPoint) : null;
            WriteVerbose($"{destination.ComputerName}, before the final freeze: {destination.Settle()}");
            var (image, stopped) = EngineRunner.Run(this, $"Moving {name} ({Id}) to {destination.ComputerName}: final dump", observer => move.FinalDump(endpoint, observer, postCopy?.Memory));
            held = stopped;
            // The downtime: from the freeze (its time is the dump's FrozenTime, which lasts until it is held stopped)
            // until the restore there returns with the process running.
            var downtime = Stopwatch.StartNew();
            bytes += image.BytesSent;
            if (FailureInjection.RequestedPoint == FailureInjection.MoveSessionLost)
            {
                destination.Die();
            }
            // The service addresses are there before the restore binds to them (the same call), and leave here only
            // once the copy runs: until then the clients' packets reach this machine, whose lock drops them (they are sent again).
            restored = destination.Restore(image.Path, Lazy, TcpEstablished, postCopy?.Source, a => Engine.Migration.ServiceAddress.Find(a)!.Value.PrefixLength);
            foreach (var address in ServiceAddress)
            {
                Engine.Migration.ServiceAddress.Remove(address);
            }
            downtime.Stop();
            if (postCopy is not null)
            {
                // It runs there on memory that is still here: from now on a failure loses it (Lose).
                WriteVerbose($"Running on {destination.ComputerName} as {restored} after {(image.FrozenTime + downtime.Elapsed).TotalMilliseconds:F0} ms; its memory comes from here");
                destination.WaitForMemory(TimeSpan.FromSeconds(LazyTimeout));
                postCopy.RequireAllArrived(destination.ComputerName, restored.Value);
            }
            else if (Lazy)
            {
                // Its memory comes from the image there, served by the session: until it is all in, the copy
                // depends on the session, so the source stays held (and resumes if the copy is lost).
                WriteVerbose($"Running on {destination.ComputerName} as {restored} after {(image.FrozenTime + downtime.Elapsed).TotalMilliseconds:F0} ms; waiting for its memory");
                destination.WaitForMemory(TimeSpan.FromSeconds(LazyTimeout));
            }
            // 4. It runs there: only now does it end here.
            held.Kill(TimeSpan.FromSeconds(10));
            held = null;
            var sourceEnded = DateTime.Now;
            postCopy?.Dispose();
            if (destination.Clean(keepLogs: true) is { } problem)
            {
                WriteWarning($"The process runs on {destination.ComputerName}, but the move's images there were not cleaned: {problem}");
            }
            WriteProgress(new ProgressRecord(ProgressActivityId, $"Moving {name} ({Id}) to {destination.ComputerName}", "Done") { RecordType = ProgressRecordType.Completed });
            return new MovedProcess
            {
                ComputerName = destination.ComputerName,
                ProcessId = restored.Value,
                SourceProcessId = Id,
                Name = name,
                Downtime = image.FrozenTime + downtime.Elapsed,
                FrozenTime = image.FrozenTime,
                BytesSent = bytes,
                PreDumpRounds = move.Rounds.Count,
                Rounds = move.Rounds,
                ImagePath = image.Path,
                LogPath = image.LogPath,
                Tls = image.Tls,
                PostCopy = PostCopy,
                PagesPulled = postCopy?.Memory.PagesSent ?? 0,
                AllPagesArrived = postCopy?.Memory.AllPagesArrived,
                SourceEnded = sourceEnded,
            };
        }
        catch (PipelineStoppedException)
        {
            if (!Lose(destination, held, postCopy, restored))
            {
                Undo(destination, held);
            }
            throw;
        }
        catch (Exception e)
        {
            var why = e is RemoteFailure failure ? $"{failure.Id}: {failure.Message}" : e.Message;
            if (Lose(destination, held, postCopy, restored))
            {
                Fail(CheckpointErrorKind.MoveFailed, $"Moving process {Id} ({name}) to {destination.ComputerName} failed after it ran there (post-copy, {postCopy!.Memory.PagesSent} pages pulled from here so far): {why}. The process is lost: its copy there ({restored}) was killed, and it was ended here, where its memory is as it was at the freeze while the copy had run on.",
                    "Start the process again. Post-copy depends on the link until every page has arrived: move without -PostCopy where losing the process is not acceptable.");
                return null;
            }
            Undo(destination, held);
            if (held is not null || e is RemoteFailure)
            {
                Fail(CheckpointErrorKind.MoveFailed, $"Moving process {Id} ({name}) to {destination.ComputerName} failed ({why}); the process runs on here, and the destination was cleaned.",
                    "See the logs named in the error; correct what the destination reports, then move the process again.");
            }
            else
            {
                WriteError(ErrorRecords.From(e, Id));
            }
            return null;
        }
    }

    // Post-copy, once the copy ran there: its memory moved on from the held one, which resuming would take back to
    // the freeze (what the copy did since, done twice). Both are ended. True when that was the case.
    private bool Lose(MoveDestination destination, HeldTree? held, HeldMemoryServer? postCopy, int? restored)
    {
        postCopy?.Dispose();
        if (postCopy is null || held is null || restored is null)
        {
            return false;
        }
        if (destination.Clean(keepLogs: false, restored) is { } problem)
        {
            WriteWarning($"The copy of process {Id} on {destination.ComputerName} ({restored}) or the move's files there ({destination.Directory}) could not be removed: {problem}");
        }
        held.Kill(TimeSpan.FromSeconds(10));
        return true;
    }

    // A sleep moved first the way the process will be (MoveRehearsal), so that both machines have compiled the final
    // dump's and the restore's code before the real freeze. Best effort: returns what went wrong, if anything.
    private string? RehearseMove(MoveDestination destination, X509Certificate2 client)
    {
        using var rehearsal = MoveRehearsal.Start(stopping.Token);
        HeldTree? held = null;
        HeldMemoryServer? postCopy = null;
        try
        {
            var move = rehearsal.Move;
            EngineRunner.Run(this, $"Rehearsing the move with a sleep ({rehearsal.ProcessId})",
                observer => move.PreDump(Endpoint(destination, "rehearsal-1", null, client), observer));
            var endpoint = Endpoint(destination, "rehearsal", move.ParentPath, client);
            postCopy = PostCopy ? HeldMemoryServer.Start(destination, client, rehearsal.ProcessId, failAt: null) : null;
            (var image, held) = EngineRunner.Run(this, $"Rehearsing the move with a sleep ({rehearsal.ProcessId})", observer => move.FinalDump(endpoint, observer, postCopy?.Memory));
            destination.RehearseRestore(image.Path, Lazy, postCopy?.Source);
            return null;
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            return e is RemoteFailure remote ? $"{remote.Id}: {remote.Message}" : e.Message;
        }
        finally
        {
            held?.Kill(TimeSpan.FromSeconds(5));
            postCopy?.Dispose();
        }
    }

    // Whatever happened, the process runs on here: resumed if the final dump held it, and the destination cleaned.
    private void Undo(MoveDestination destination, HeldTree? held)
    {
        held?.Resume();
        if (destination.Clean(keepLogs: false) is { } problem)
        {
            WriteWarning($"The move's files on {destination.ComputerName} ({destination.Directory}) could not be removed: {problem}");
        }
    }

    private static PageServerEndpoint Endpoint(MoveDestination destination, string round, string? parent, X509Certificate2 client)
    {
        var (address, port, thumbprint) = destination.StartServer(round, parent, client.Thumbprint);
        return new PageServerEndpoint { Host = address, Port = port, TrustedThumbprint = thumbprint, ClientCertificate = client };
    }

    // The source's certificate for this move only: the destination's servers pin its thumbprint, given through the session.
    private static X509Certificate2 NewClientCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN=criups-move-client-{Environment.MachineName}", key, HashAlgorithmName.SHA256);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.Now.AddMinutes(-5), DateTimeOffset.Now.AddDays(1));
        // Exported and loaded again: TLS on Linux needs a certificate whose key is not ephemeral.
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
    }

    private PSSession OpenSession()
    {
        var script = "param($HostName, $UserName, $KeyFilePath, $Options) $a = @{ HostName = $HostName; ErrorAction = 'Stop' }; if ($UserName) { $a.UserName = $UserName }; if ($KeyFilePath) { $a.KeyFilePath = $KeyFilePath }; if ($Options) { $a.Options = $Options }; New-PSSession @a";
        return (PSSession)InvokeCommand.InvokeScript(script, true, PipelineResultTypes.None, null, HostName, UserName, KeyFilePath, Options)[0].BaseObject;
    }

    private void Fail(CheckpointErrorKind kind, string message, string action) =>
        WriteError(ErrorRecords.From(new CheckpointException(kind, message, Id, action), Id));
}
