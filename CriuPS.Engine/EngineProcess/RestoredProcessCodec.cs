using CriuPS.Engine.Model;
using static CriuPS.Engine.EngineProcess.EngineProcessProtocol;

namespace CriuPS.Engine.EngineProcess;

/// <summary>
/// The <see cref="RestoredProcess"/> criups-engine made, as it crosses to the session, which then has the very object
/// an in-session restore returns. Never a lazy restore's: its page transfer runs on in the session.
/// </summary>
internal static class RestoredProcessCodec
{
    public static void Write(BinaryWriter writer, RestoredProcess restored)
    {
        if (restored.LazyRestore is not null)
        {
            throw new ArgumentException("a lazy restore's transfer lives in the process that restored it", nameof(restored));
        }
        writer.Write(restored.Id);
        writer.Write(restored.NamespacePid);
        writer.Write(restored.PidNamespaceInit ?? 0);
        writer.Write(restored.Name);
        writer.Write(restored.ImagePath);
        writer.Write(restored.ParentId);
        writer.Write(restored.Detached);
        writer.Write(restored.ThreadCount);
        writer.Write(restored.MemoryBytes);
        writer.Write(restored.RestoreTime.Ticks);
        writer.Write(restored.ReadTime.Ticks);
        writer.Write(restored.VerifyTime.Ticks);
        writer.Write(restored.MemoryTime.Ticks);
        writer.Write(restored.Cgroups.Count);
        foreach (var cgroup in restored.Cgroups)
        {
            writer.Write(cgroup);
        }
        WriteOptional(writer, restored.LogPath);
    }

    public static RestoredProcess Read(BinaryReader reader) => new()
    {
        Id = reader.ReadInt32(),
        NamespacePid = reader.ReadInt32(),
        PidNamespaceInit = reader.ReadInt32() is var init and not 0 ? init : null,
        Name = reader.ReadString(),
        ImagePath = reader.ReadString(),
        ParentId = reader.ReadInt32(),
        Detached = reader.ReadBoolean(),
        ThreadCount = reader.ReadInt32(),
        MemoryBytes = reader.ReadInt64(),
        RestoreTime = TimeSpan.FromTicks(reader.ReadInt64()),
        ReadTime = TimeSpan.FromTicks(reader.ReadInt64()),
        VerifyTime = TimeSpan.FromTicks(reader.ReadInt64()),
        MemoryTime = TimeSpan.FromTicks(reader.ReadInt64()),
        Cgroups = ReadStrings(reader),
        LogPath = ReadOptional(reader),
    };

    // A loop, not Enumerable.Range(...).Select(...): read in the session, whose first restore compiled the query's
    // generic code.
    private static string[] ReadStrings(BinaryReader reader)
    {
        var strings = new string[reader.ReadInt32()];
        for (int i = 0; i < strings.Length; i++)
        {
            strings[i] = reader.ReadString();
        }
        return strings;
    }
}
