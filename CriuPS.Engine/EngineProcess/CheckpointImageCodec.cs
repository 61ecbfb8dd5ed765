using CriuPS.Engine.Model;
using static CriuPS.Engine.EngineProcess.EngineProcessProtocol;

namespace CriuPS.Engine.EngineProcess;

/// <summary>
/// The <see cref="CheckpointImage"/> criups-engine made of the image it wrote, as it crosses to the session: the
/// session then has the very object an in-session checkpoint returns, without reading the image again (which a fresh
/// PowerShell's runtime would first have to compile: some 30 ms of its first checkpoint).
/// </summary>
internal static class CheckpointImageCodec
{
    public static void Write(BinaryWriter writer, CheckpointImage image)
    {
        writer.Write(image.Path);
        writer.Write(image.RootProcessId);
        writer.Write(image.Name);
        writer.Write(image.ProcessCount);
        writer.Write(image.ThreadCount);
        writer.Write(image.MemoryBytes);
        writer.Write(image.Pages);
        writer.Write(image.ParentMemoryBytes);
        WriteOptional(writer, image.ParentPath);
        writer.Write(image.PreDump);
        writer.Write(image.FileCount);
        WriteOptionalTime(writer, image.FrozenTime);
        WriteOptionalTime(writer, image.TotalTime);
        WriteOptional(writer, image.Kernel);
        WriteOptional(writer, image.Cpu);
        writer.Write(image.CreatedAt.UtcTicks);
        writer.Write((short)image.CreatedAt.Offset.TotalMinutes);
        writer.Write(image.HasDigests);
        writer.Write(image.WrittenBy);
        writer.Write(image.Processes.Count);
        foreach (var process in image.Processes)
        {
            Write(writer, process);
        }
    }

    public static CheckpointImage Read(BinaryReader reader) => new()
    {
        Path = reader.ReadString(),
        RootProcessId = reader.ReadInt32(),
        Name = reader.ReadString(),
        ProcessCount = reader.ReadInt32(),
        ThreadCount = reader.ReadInt32(),
        MemoryBytes = reader.ReadInt64(),
        Pages = reader.ReadInt64(),
        ParentMemoryBytes = reader.ReadInt64(),
        ParentPath = ReadOptional(reader),
        PreDump = reader.ReadBoolean(),
        FileCount = reader.ReadInt32(),
        FrozenTime = ReadOptionalTime(reader),
        TotalTime = ReadOptionalTime(reader),
        Kernel = ReadOptional(reader),
        Cpu = ReadOptional(reader),
        CreatedAt = ReadTimestamp(reader),
        HasDigests = reader.ReadBoolean(),
        WrittenBy = reader.ReadString(),
        Processes = ReadList(reader, ReadProcess),
    };

    private static void Write(BinaryWriter writer, ImageProcess process)
    {
        writer.Write(process.Id);
        writer.Write(process.ParentId);
        writer.Write(process.ProcessGroupId);
        writer.Write(process.SessionId);
        writer.Write(process.Name);
        writer.Write(process.State);
        writer.Write(process.Threads.Count);
        foreach (var thread in process.Threads)
        {
            writer.Write(thread.Id);
            writer.Write(thread.Name);
            writer.Write(thread.InstructionPointer);
        }
        writer.Write(process.MemoryAreas.Count);
        foreach (var area in process.MemoryAreas)
        {
            writer.Write(area.Start);
            writer.Write(area.End);
            writer.Write(area.Protection);
            writer.Write(area.Kind);
            WriteOptional(writer, area.Path);
            writer.Write(area.SavedBytes);
        }
        writer.Write(process.Files.Count);
        foreach (var file in process.Files)
        {
            writer.Write(file.Fd);
            writer.Write(file.Type);
            writer.Write(file.Target);
            writer.Write(file.Flags);
            writer.Write(file.CloseOnExec);
            writer.Write(file.Position.HasValue);
            if (file.Position is { } position)
            {
                writer.Write(position);
            }
        }
        writer.Write(process.MemoryBytes);
    }

    private static ImageProcess ReadProcess(BinaryReader reader) => new()
    {
        Id = reader.ReadInt32(),
        ParentId = reader.ReadInt32(),
        ProcessGroupId = reader.ReadInt32(),
        SessionId = reader.ReadInt32(),
        Name = reader.ReadString(),
        State = reader.ReadString(),
        Threads = ReadList(reader, r => new ImageThread { Id = r.ReadInt32(), Name = r.ReadString(), InstructionPointer = r.ReadUInt64() }),
        MemoryAreas = ReadList(reader, r => new ImageMemoryArea
        {
            Start = r.ReadUInt64(),
            End = r.ReadUInt64(),
            Protection = r.ReadString(),
            Kind = r.ReadString(),
            Path = ReadOptional(r),
            SavedBytes = r.ReadInt64(),
        }),
        Files = ReadList(reader, r => new ImageFileDescriptor
        {
            Fd = r.ReadInt32(),
            Type = r.ReadString(),
            Target = r.ReadString(),
            Flags = r.ReadInt32(),
            CloseOnExec = r.ReadBoolean(),
            Position = r.ReadBoolean() ? r.ReadInt64() : null,
        }),
        MemoryBytes = reader.ReadInt64(),
    };

    private static List<T> ReadList<T>(BinaryReader reader, Func<BinaryReader, T> read)
    {
        int count = reader.ReadInt32();
        var list = new List<T>(count);
        for (int i = 0; i < count; i++)
        {
            list.Add(read(reader));
        }
        return list;
    }

    private static DateTimeOffset ReadTimestamp(BinaryReader reader)
    {
        long utcTicks = reader.ReadInt64();
        var offset = TimeSpan.FromMinutes(reader.ReadInt16());
        return new DateTimeOffset(utcTicks + offset.Ticks, offset);
    }

    private static void WriteOptionalTime(BinaryWriter writer, TimeSpan? time)
    {
        writer.Write(time.HasValue);
        if (time is { } value)
        {
            writer.Write(value.Ticks);
        }
    }

    private static TimeSpan? ReadOptionalTime(BinaryReader reader) => reader.ReadBoolean() ? TimeSpan.FromTicks(reader.ReadInt64()) : null;
}
