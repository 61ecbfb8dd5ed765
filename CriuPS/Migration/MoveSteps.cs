using System.Diagnostics;
using System.Management.Automation;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CriuPS.Cmdlets;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Migration;
using CriuPS.Engine.Model;
using CriuPS.Engine.PageServer;
using CriuPS.Engine.Resources.Cpu;

namespace CriuPS.Migration;

/// <summary>
/// One step of a move: its name (written with -Verbose as "move step: NAME" as it begins), what it does, what it
/// undoes when it or a later step fails (true when nothing before it is left to undo), and when it applies (always,
/// unless <paramref name="When"/> says otherwise).
/// </summary>
internal sealed record MoveStep(string Name, Action<MoveSteps> Run, Func<MoveSteps, bool>? Undo = null, Func<MoveSteps, bool>? When = null);

/// <summary>
/// The order of Move-Process as data: <see cref="Order"/> lists its steps, each a method below whose comment says
/// why it comes where it does. An instance is one move under way: what its steps made so far (the move's files
/// there, the tree held stopped here, the copy there), which a failure undoes step by step, the last step first.
/// </summary>
internal sealed class MoveSteps : IDisposable
{
    private const int ProgressActivityId = 2;

    /// <summary>The steps of a move, in the order it takes them.</summary>
    public static readonly IReadOnlyList<MoveStep> Order =
    [
        new("process", s => s.CheckProcess()),
        new("destination", s => s.CheckDestination()),
        new("rehearsal", s => s.Rehearse(), Undo: s => s.CleanDestination()),
        new("pre-dump rounds", s => s.PreDumpRounds(), When: s => !s.PostCopy),
        new("final dump", s => s.FinalDump(), Undo: s => s.ResumeHeld()),
        new("restore there", s => s.RestoreThere(), Undo: s => s.Lose()),
        new("memory there", s => s.WaitForMemory(), When: s => s.PostCopy || s.Lazy),
        new("end of the source", s => s.EndSource()),
    ];

    private readonly MoveProcessCommand command;
    private readonly MoveDestination destination;
    private readonly CancellationToken stopping;
    // The source's certificate for this move and its rounds, made once the process is found.
    private readonly X509Certificate2 client;
    private readonly ProcessMove move;
    // Made by the steps, in this order; null until then (the undoing checks).
    private string name = "";
    private long bytes;
    private HeldTree? held;
    private HeldMemoryServer? postCopy;
    private RemoteCheckpointImage? image;
    private Stopwatch? downtime;
    private int? restored;
    private MovedProcess? moved;
    // Set once the destination accepted the move: a step that fails after that has something to undo.
    private bool accepted;

    public MoveSteps(MoveProcessCommand command, MoveDestination destination, CancellationToken stopping)
    {
        this.command = command;
        this.destination = destination;
        this.stopping = stopping;
        client = NewClientCertificate();
        move = new ProcessMove(new MoveOptions
        {
            ProcessId = Id,
            MaxRounds = command.MaxRounds,
            MaxDowntime = TimeSpan.FromMilliseconds(command.MaxDowntime),
            Cancellation = stopping,
            FailAt = FailureInjection.RequestedPoint,
            TcpEstablished = command.TcpEstablished,
            SkipInFlight = command.SkipInFlight,
        });
    }

    private int Id => command.Id;

    private bool PostCopy => command.PostCopy;

    private bool Lazy => command.Lazy;

    private IReadOnlyList<System.Net.IPAddress> ServiceAddress => command.ServiceAddress;

    /// <summary>
    /// Walks <see cref="Order"/>, naming each step as it begins; returns the moved process, or null once the move was
    /// refused or failed (and said so). Before the destination accepted, nothing was done: a refusal is written as
    /// an error, anything else thrown as it is. After, a failure undoes what the steps that began made, the last
    /// first, and the process runs on here (unless a post-copy copy ran there: then it is lost on both sides).
    /// </summary>
    public MovedProcess? Run()
    {
        var begun = new List<MoveStep>();
        try
        {
            foreach (var step in Order)
            {
                if (step.When is not null && !step.When(this))
                {
                    continue;
                }
                command.WriteVerbose($"move step: {step.Name}");
                begun.Add(step);
                step.Run(this);
            }
            return moved;
        }
        catch (MoveRefused refused)
        {
            command.WriteError(ErrorRecords.From(refused.Error, Id));
            return null;
        }
        catch (PipelineStoppedException) when (accepted)
        {
            Undo(begun);
            throw;
        }
        catch (Exception e) when (accepted)
        {
            var why = e is RemoteFailure failure ? $"{failure.Id}: {failure.Message}" : e.Message;
            if (Undo(begun))
            {
                Fail(CheckpointErrorKind.MoveFailed, $"Moving process {Id} ({name}) to {destination.ComputerName} failed after it ran there (post-copy, {postCopy!.Memory.PagesSent} pages pulled from here so far): {why}. The process is lost: its copy there ({restored}) was killed, and it was ended here, where its memory is as it was at the freeze while the copy had run on.",
                    "Start the process again. Post-copy depends on the link until every page has arrived: move without -PostCopy where losing the process is not acceptable.");
                return null;
            }
            if (held is not null || e is RemoteFailure)
            {
                Fail(CheckpointErrorKind.MoveFailed, $"Moving process {Id} ({name}) to {destination.ComputerName} failed ({why}); the process runs on here, and the destination was cleaned.",
                    "See the logs named in the error; correct what the destination reports, then move the process again.");
            }
            else
            {
                command.WriteError(ErrorRecords.From(e, Id));
            }
            return null;
        }
    }

    /// <summary>
    /// Undoes the steps that began, the last first; true when a post-copy copy had run there and was lost (its undo
    /// ended both sides: nothing before it is left to undo).
    /// </summary>
    private bool Undo(List<MoveStep> begun)
    {
        foreach (var step in Enumerable.Reverse(begun))
        {
            if (step.Undo?.Invoke(this) == true)
            {
                return true;
            }
        }
        return false;
    }

    public void Dispose() => client.Dispose();

    // First: a process that is gone is refused before the destination is asked anything.
    private void CheckProcess()
    {
        name = File.Exists($"/proc/{Id}/comm") ? File.ReadAllText($"/proc/{Id}/comm").Trim() : "";
        if (name.Length == 0)
        {
            throw new MoveRefused(new CheckpointException(CheckpointErrorKind.ProcessNotFound, $"There is no process {Id}.", Id));
        }
    }

    // The destination first: anything it lacks is refused before the process is touched.
    private void CheckDestination()
    {
        command.WriteVerbose($"Checking {destination.ComputerName}");
        var module = command.MyInvocation.MyCommand.Module;
        var notHere = ServiceAddress.Where(a => Engine.Migration.ServiceAddress.Find(a) is null).ToList();
        if (notHere.Count > 0)
        {
            throw Refused(CheckpointErrorKind.DestinationUnsuitable, $"Process {Id} ({name}) cannot be moved with its service address(es) {string.Join(", ", notHere)}: no interface of this machine holds them. Nothing was done.",
                "Name in -ServiceAddress only addresses of this machine's interfaces (ip address shows them).");
        }
        var (problems, taken) = destination.Check(module.Path, module.Version.ToString(), SourceFacts.Ids(Id), SourceFacts.Files(Id), ServiceAddress,
            CpuFit.ThisCpuDescription(), $"{Environment.OSVersion.Platform} {System.Runtime.InteropServices.RuntimeInformation.OSArchitecture} {Environment.OSVersion.Version.Major}");
        if (problems.Count > 0)
        {
            throw Refused(CheckpointErrorKind.DestinationUnsuitable, $"{destination.ComputerName} cannot take process {Id} ({name}): {string.Join("; ", problems)}. Nothing was done.",
                "Prepare the destination: install CriuPS there, and make the files the process uses available at the same paths.");
        }
        if (taken.Count > 0)
        {
            // The seam for PID namespaces: with a new PID namespace there (not yet offered), taken PIDs would not matter.
            throw Refused(CheckpointErrorKind.PidInUse, $"{destination.ComputerName} cannot take process {Id} ({name}): PID(s) {string.Join(", ", taken)} of its tree are in use there. Nothing was done.",
                "End the processes that hold these PIDs on the destination, or move the process to another machine.");
        }
        accepted = true;
    }

    // Before the rounds, the first step to write there: the code of the final dump and of the restore there is
    // compiled on both machines before the real freeze (best effort: a rehearsal that fails is only said).
    private void Rehearse()
    {
        if (RehearseMove() is { } failedMove)
        {
            command.WriteVerbose($"The rehearsal move of a sleep to {destination.ComputerName} failed ({failedMove}): rehearsing a restore there alone");
            if (destination.Rehearse(Lazy) is { } rehearsal)
            {
                command.WriteVerbose($"The rehearsal of a restore on {destination.ComputerName} failed (the restore there will compile its code in the downtime): {rehearsal}");
            }
        }
    }

    // Rounds while it runs, each into a page server there, over TLS pinned both ways through the session. Post-copy
    // takes no rounds: every page it leaves behind comes from the held memory, however recent.
    private void PreDumpRounds()
    {
        while (move.Rounds.Count < command.MaxRounds && move.Enough() is null)
        {
            var round = EngineRunner.Run(command, $"Moving {name} ({Id}) to {destination.ComputerName}: round {move.Rounds.Count + 1}",
                observer => move.PreDump(Endpoint(destination, $"round-{move.Rounds.Count + 1}", move.ParentPath, client), observer));
            bytes += (long)round.BytesSent.Value;
            command.WriteProgress(new ProgressRecord(ProgressActivityId, $"Moving {name} ({Id}) to {destination.ComputerName}",
                $"round {round.Number}: {round.Pages:N0} pages in {round.Duration.TotalSeconds:F2} s ({round.BytesPerSecond / (1 << 20):F0} MiB/s), predicted downtime {round.PredictedDowntime.TotalMilliseconds:F0} ms"));
            command.WriteVerbose($"Round {round.Number}: {round.Pages} pages, {round.BytesSent.Value >> 20} MiB in {round.Duration.TotalMilliseconds:F0} ms, predicted downtime {round.PredictedDowntime.TotalMilliseconds:F0} ms");
        }
    }

    // The final dump: the process is frozen, sent, and held stopped here until it runs there (post-copy: its memory
    // served from here, by a server started before the freeze).
    private void FinalDump()
    {
        command.WriteVerbose($"Final dump: {(PostCopy ? "post-copy" : move.Enough() ?? "no pre-dump rounds asked for")}");
        var endpoint = Endpoint(destination, "final", move.ParentPath, client);
        postCopy = PostCopy ? HeldMemoryServer.Start(destination, client, Id, FailureInjection.RequestedPoint) : null;
        command.WriteVerbose($"{destination.ComputerName}, before the final freeze: {destination.Settle()}");
        var (image, stopped) = EngineRunner.Run(command, $"Moving {name} ({Id}) to {destination.ComputerName}: final dump", observer => move.FinalDump(endpoint, observer, postCopy?.Memory));
        held = stopped;
        this.image = image;
        // The downtime: from the freeze (its time is the dump's FrozenTime, which lasts until it is held stopped)
        // until the restore there returns with the process running.
        downtime = Stopwatch.StartNew();
        bytes += image.BytesSent;
    }

    // Once held: the copy there runs. The service addresses are there before the restore binds to them (the same
    // call), and leave here only once the copy runs: until then the clients' packets reach this machine, whose lock
    // drops them (they are sent again).
    private void RestoreThere()
    {
        if (FailureInjection.RequestedPoint == FailureInjection.MoveSessionLost)
        {
            destination.Die();
        }
        restored = destination.Restore(image!.Path, Lazy, command.TcpEstablished, postCopy?.Source, a => Engine.Migration.ServiceAddress.Find(a)!.Value.PrefixLength);
        foreach (var address in ServiceAddress)
        {
            Engine.Migration.ServiceAddress.Remove(address);
        }
        downtime!.Stop();
    }

    // A copy that runs on memory not there yet: the source stays held until it has all arrived.
    private void WaitForMemory()
    {
        if (postCopy is not null)
        {
            // It runs there on memory that is still here: from now on a failure loses it (Lose).
            command.WriteVerbose($"Running on {destination.ComputerName} as {restored} after {(image!.FrozenTime + downtime!.Elapsed).TotalMilliseconds:F0} ms; its memory comes from here");
            destination.WaitForMemory(TimeSpan.FromSeconds(command.LazyTimeout));
            postCopy.RequireAllArrived(destination.ComputerName, restored!.Value);
        }
        else
        {
            // Its memory comes from the image there, served by the session: until it is all in, the copy
            // depends on the session, so the source stays held (and resumes if the copy is lost).
            command.WriteVerbose($"Running on {destination.ComputerName} as {restored} after {(image!.FrozenTime + downtime!.Elapsed).TotalMilliseconds:F0} ms; waiting for its memory");
            destination.WaitForMemory(TimeSpan.FromSeconds(command.LazyTimeout));
        }
    }

    // Last: it runs there, so only now does it end here.
    private void EndSource()
    {
        held!.Kill(TimeSpan.FromSeconds(10));
        held = null;
        var sourceEnded = DateTime.Now;
        postCopy?.Dispose();
        if (destination.Clean(keepLogs: true) is { } problem)
        {
            command.WriteWarning($"The process runs on {destination.ComputerName}, but the move's images there were not cleaned: {problem}");
        }
        command.WriteProgress(new ProgressRecord(ProgressActivityId, $"Moving {name} ({Id}) to {destination.ComputerName}", "Done") { RecordType = ProgressRecordType.Completed });
        moved = new MovedProcess
        {
            ComputerName = destination.ComputerName,
            ProcessId = restored!.Value,
            SourceProcessId = Id,
            Name = name,
            Downtime = image!.FrozenTime + downtime!.Elapsed,
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

    // The undo of "restore there". Post-copy, once the copy ran there: its memory moved on from the held one, which
    // resuming would take back to the freeze (what the copy did since, done twice). Both are ended. True when that
    // was the case. The post-copy server goes first in any case.
    private bool Lose()
    {
        postCopy?.Dispose();
        if (postCopy is null || held is null || restored is null)
        {
            return false;
        }
        if (destination.Clean(keepLogs: false, restored) is { } problem)
        {
            command.WriteWarning($"The copy of process {Id} on {destination.ComputerName} ({restored}) or the move's files there ({destination.Directory}) could not be removed: {problem}");
        }
        held.Kill(TimeSpan.FromSeconds(10));
        return true;
    }

    // The undo of "final dump": the process runs on here, resumed if the final dump held it (the post-copy server
    // stopped first, if "restore there" did not stop it already).
    private bool ResumeHeld()
    {
        postCopy?.Dispose();
        held?.Resume();
        return false;
    }

    // The undo of "rehearsal", the first step to write there: the destination cleaned.
    private bool CleanDestination()
    {
        if (destination.Clean(keepLogs: false) is { } problem)
        {
            command.WriteWarning($"The move's files on {destination.ComputerName} ({destination.Directory}) could not be removed: {problem}");
        }
        return false;
    }

    // A sleep moved first the way the process will be (MoveRehearsal), so that both machines have compiled the final
    // dump's and the restore's code before the real freeze. Best effort: returns what went wrong, if anything.
    private string? RehearseMove()
    {
        using var rehearsal = MoveRehearsal.Start(stopping);
        HeldTree? held = null;
        HeldMemoryServer? postCopy = null;
        try
        {
            var move = rehearsal.Move;
            EngineRunner.Run(command, $"Rehearsing the move with a sleep ({rehearsal.ProcessId})",
                observer => move.PreDump(Endpoint(destination, "rehearsal-1", null, client), observer));
            var endpoint = Endpoint(destination, "rehearsal", move.ParentPath, client);
            postCopy = PostCopy ? HeldMemoryServer.Start(destination, client, rehearsal.ProcessId, failAt: null) : null;
            (var image, held) = EngineRunner.Run(command, $"Rehearsing the move with a sleep ({rehearsal.ProcessId})", observer => move.FinalDump(endpoint, observer, postCopy?.Memory));
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

    private MoveRefused Refused(CheckpointErrorKind kind, string message, string action) => new(new CheckpointException(kind, message, Id, action));

    private void Fail(CheckpointErrorKind kind, string message, string action) =>
        command.WriteError(ErrorRecords.From(new CheckpointException(kind, message, Id, action), Id));

    /// <summary>A move refused before anything was done: written as an error, not thrown.</summary>
    private sealed class MoveRefused(CheckpointException error) : Exception(error.Message)
    {
        public CheckpointException Error { get; } = error;
    }
}
