using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Restore;

namespace CriuPS.Engine.EngineProcess;

/// <summary>
/// What the PowerShell session and criups-engine say to each other over the engine's stdin and stdout: one request
/// (a checkpoint's or a restore's options), then from the engine a stream of what it reports (phases, progress,
/// warnings, details) ending with the saved image (<see cref="CheckpointImageCodec"/>), the restored process
/// (<see cref="RestoredProcessCodec"/>) or the failure. Stdin stays open for the operation's length: its end (the
/// session closed it, or died) cancels the operation, which then releases the process, or kills what the restore
/// made, as any cancelled operation does. Both ends are built from the same module, so the format has no versions,
/// only magic numbers that tell the requests apart and catch a program that is not criups-engine.
/// </summary>
internal static class EngineProcessProtocol
{
    private const uint DumpRequestMagic = 0x43524B44; // "CRKD": a checkpoint request
    private const uint RestoreRequestMagic = 0x43525253; // "CRRS": a restore request

    public enum EventKind : byte
    {
        Phase = 1,
        Progress = 2,
        Warning = 3,
        Detail = 4,
        Saved = 5,
        Failed = 6,
        Restored = 7,
        RootCreated = 8,
    }

    private enum TargetKind : byte
    {
        None = 0,
        Number = 1,
        Text = 2,
    }

    public static void WriteDumpRequest(BinaryWriter writer, DumpOptions options, int callerProcessId)
    {
        writer.Write(DumpRequestMagic);
        writer.Write(callerProcessId);
        writer.Write(options.ProcessId);
        writer.Write(options.ImagePath);
        writer.Write(options.LeaveRunning);
        writer.Write(options.Background);
        writer.Write(options.PreDump);
        WriteOptional(writer, options.ParentImage);
        writer.Write(options.ShellJob);
        writer.Write(options.TcpEstablished);
        writer.Write(options.SkipInFlight);
        writer.Write(options.Force);
        writer.Write(options.GhostFileLimit);
        writer.Write(options.IpcKeys.Count);
        foreach (int key in options.IpcKeys)
        {
            writer.Write(key);
        }
        writer.Write(options.FreezeTimeout.Ticks);
        WriteOptional(writer, options.FreezeCgroup);
        writer.Write(options.ForcePagemapFile);
        writer.Write(options.SkipDigests);
        WriteOptional(writer, options.FailAt);
        writer.Flush();
    }

    /// <summary>
    /// A restore's request: the caller started <paramref name="hostProcessId"/> for it (<see cref="RestoreOptions.HostProcessId"/>).
    /// </summary>
    public static void WriteRestoreRequest(BinaryWriter writer, RestoreOptions options, int hostProcessId)
    {
        writer.Write(RestoreRequestMagic);
        writer.Write(hostProcessId);
        writer.Write(options.ImagePath);
        writer.Write(options.Detach);
        writer.Write(options.ShellJob);
        writer.Write(options.LazyPages);
        writer.Write(options.TcpEstablished);
        writer.Write(options.TcpClose);
        WriteOptional(writer, options.NetworkNamespace);
        WriteNames(writer, options.ExternalVeth);
        WriteNames(writer, options.ExternalMounts);
        writer.Write((int)options.CgroupMode);
        writer.Write(options.NewPidNamespace);
        WriteOptional(writer, options.FailAt);
        WriteOptional(writer, options.LogPath);
        writer.Flush();
    }

    /// <summary>
    /// The request on criups-engine's stdin: <see cref="DumpOptions"/> or <see cref="RestoreOptions"/>, cancelled by
    /// <paramref name="cancellation"/>; a restore tells <paramref name="rootCreated"/> its root's PID.
    /// </summary>
    public static object ReadRequest(BinaryReader reader, CancellationToken cancellation, Action<int> rootCreated) => reader.ReadUInt32() switch
    {
        DumpRequestMagic => ReadDumpRequest(reader, cancellation),
        RestoreRequestMagic => ReadRestoreRequest(reader, cancellation, rootCreated),
        _ => throw new InvalidDataException("criups-engine was given something other than a checkpoint or restore request on its standard input."),
    };

    private static RestoreOptions ReadRestoreRequest(BinaryReader reader, CancellationToken cancellation, Action<int> rootCreated) => new()
    {
        HostProcessId = reader.ReadInt32(),
        ImagePath = reader.ReadString(),
        Detach = reader.ReadBoolean(),
        ShellJob = reader.ReadBoolean(),
        LazyPages = reader.ReadBoolean(),
        TcpEstablished = reader.ReadBoolean(),
        TcpClose = reader.ReadBoolean(),
        NetworkNamespace = ReadOptional(reader),
        ExternalVeth = ReadNames(reader),
        ExternalMounts = ReadNames(reader),
        CgroupMode = (CgroupMode)reader.ReadInt32(),
        NewPidNamespace = reader.ReadBoolean(),
        FailAt = ReadOptional(reader),
        LogPath = ReadOptional(reader),
        RootCreated = rootCreated,
        Cancellation = cancellation,
    };

    private static DumpOptions ReadDumpRequest(BinaryReader reader, CancellationToken cancellation)
    {
        int caller = reader.ReadInt32();
        return new DumpOptions
        {
            CallerProcessId = caller,
            ProcessId = reader.ReadInt32(),
            ImagePath = reader.ReadString(),
            LeaveRunning = reader.ReadBoolean(),
            Background = reader.ReadBoolean(),
            PreDump = reader.ReadBoolean(),
            ParentImage = ReadOptional(reader),
            ShellJob = reader.ReadBoolean(),
            TcpEstablished = reader.ReadBoolean(),
            SkipInFlight = reader.ReadBoolean(),
            Force = reader.ReadBoolean(),
            GhostFileLimit = reader.ReadInt64(),
            IpcKeys = Enumerable.Range(0, reader.ReadInt32()).Select(_ => reader.ReadInt32()).ToArray(),
            FreezeTimeout = TimeSpan.FromTicks(reader.ReadInt64()),
            FreezeCgroup = ReadOptional(reader),
            ForcePagemapFile = reader.ReadBoolean(),
            SkipDigests = reader.ReadBoolean(),
            FailAt = ReadOptional(reader),
            Cancellation = cancellation,
        };
    }

    /// <summary>
    /// A failure as the session rebuilds it: a <see cref="CheckpointException"/> with its kind, message, target,
    /// recommended action and log; anything else by its message, a denied access kept as such (its own error id).
    /// </summary>
    public static void WriteFailure(BinaryWriter writer, Exception failure)
    {
        writer.Write((byte)EventKind.Failed);
        if (failure is CheckpointException e)
        {
            writer.Write(e.Kind.ToString());
            writer.Write(e.Message);
            switch (e.Target)
            {
                case null:
                    writer.Write((byte)TargetKind.None);
                    break;
                case int or long:
                    writer.Write((byte)TargetKind.Number);
                    writer.Write(Convert.ToInt64(e.Target, System.Globalization.CultureInfo.InvariantCulture));
                    break;
                default:
                    writer.Write((byte)TargetKind.Text);
                    writer.Write(e.Target.ToString() ?? "");
                    break;
            }
            WriteOptional(writer, e.RecommendedAction);
            WriteOptional(writer, e.LogPath);
        }
        else
        {
            writer.Write(failure is UnauthorizedAccessException ? nameof(UnauthorizedAccessException) : "");
            writer.Write($"{failure.GetType().Name}: {failure.Message}");
        }
        writer.Flush();
    }

    public static Exception ReadFailure(BinaryReader reader)
    {
        string kind = reader.ReadString();
        string message = reader.ReadString();
        if (Enum.TryParse<CheckpointErrorKind>(kind, out var checkpointKind))
        {
            object? target = (TargetKind)reader.ReadByte() switch
            {
                TargetKind.Number => reader.ReadInt64() is var n && n is >= int.MinValue and <= int.MaxValue ? (object)(int)n : n,
                TargetKind.Text => reader.ReadString(),
                _ => null,
            };
            return new CheckpointException(checkpointKind, message, target, ReadOptional(reader)) { LogPath = ReadOptional(reader) };
        }
        return kind == nameof(UnauthorizedAccessException)
            ? new UnauthorizedAccessException(message)
            : new InvalidOperationException($"criups-engine failed: {message}");
    }

    public static void WriteOptional(BinaryWriter writer, string? text)
    {
        writer.Write(text is not null);
        if (text is not null)
        {
            writer.Write(text);
        }
    }

    public static string? ReadOptional(BinaryReader reader) => reader.ReadBoolean() ? reader.ReadString() : null;

    // A map of names (the veth devices' outer ends, the external mounts' host paths), or none.
    private static void WriteNames(BinaryWriter writer, IReadOnlyDictionary<string, string>? names)
    {
        writer.Write(names?.Count ?? -1);
        foreach (var (key, value) in names ?? new Dictionary<string, string>())
        {
            writer.Write(key);
            writer.Write(value);
        }
    }

    private static Dictionary<string, string>? ReadNames(BinaryReader reader)
    {
        int count = reader.ReadInt32();
        if (count < 0)
        {
            return null;
        }
        var names = new Dictionary<string, string>(count, StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            names.Add(reader.ReadString(), reader.ReadString());
        }
        return names;
    }
}
