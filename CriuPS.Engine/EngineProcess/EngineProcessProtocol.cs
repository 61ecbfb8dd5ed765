using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;

namespace CriuPS.Engine.EngineProcess;

/// <summary>
/// What the PowerShell session and criups-engine say to each other over the engine's stdin and stdout: one request
/// (the checkpoint's options), then from the engine a stream of what it reports (phases, progress, warnings, details)
/// ending with the saved image (<see cref="CheckpointImageCodec"/>) or the failure. Stdin stays open for the operation's length: its end (the session
/// closed it, or died) cancels the operation, which then releases the process as any cancelled checkpoint does.
/// Both ends are built from the same module, so the format has no versions, only a magic number that catches a
/// program that is not criups-engine.
/// </summary>
internal static class EngineProcessProtocol
{
    private const uint RequestMagic = 0x43524B44; // "CRKD": a checkpoint request

    public enum EventKind : byte
    {
        Phase = 1,
        Progress = 2,
        Warning = 3,
        Detail = 4,
        Saved = 5,
        Failed = 6,
    }

    private enum TargetKind : byte
    {
        None = 0,
        Number = 1,
        Text = 2,
    }

    public static void WriteDumpRequest(BinaryWriter writer, DumpOptions options, int callerProcessId)
    {
        writer.Write(RequestMagic);
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

    public static DumpOptions ReadDumpRequest(BinaryReader reader, CancellationToken cancellation)
    {
        if (reader.ReadUInt32() != RequestMagic)
        {
            throw new InvalidDataException("criups-engine was given something other than a checkpoint request on its standard input.");
        }
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
}
