using System.Collections;
using System.Text.Json;
using CriuPS.Engine.EngineProcess;
using CriuPS.Engine.Model;
using Xunit;

namespace CriuPS.Engine.Tests.EngineProcess;

// The image criups-engine sends back is the object an in-session checkpoint returns: every property crosses.
public class CheckpointImageCodecTests
{
    [Fact]
    public void EveryPropertyOfTheImageCrosses()
    {
        var image = Sample();
        // The sample sets every property (of the image, its processes, threads, areas and descriptors) to something
        // other than its default: a property added later and left out of the codec fails the comparison below.
        AssertNothingDefault(image, "image");
        var stream = new MemoryStream();
        CheckpointImageCodec.Write(new BinaryWriter(stream), image);
        stream.Position = 0;
        var back = CheckpointImageCodec.Read(new BinaryReader(stream));
        Assert.Equal(stream.Length, stream.Position);
        Assert.Equal(JsonSerializer.Serialize(image), JsonSerializer.Serialize(back));
        Assert.Equal(image.CreatedAt.Offset, back.CreatedAt.Offset);
    }

    [Fact]
    public void WhatAnImageMayLackCrossesAsMissing()
    {
        var image = new CheckpointImage
        {
            Path = "/i", RootProcessId = 1, Name = "a", ProcessCount = 0, ThreadCount = 0, MemoryBytes = 0, Pages = 0, FileCount = 0,
            CreatedAt = DateTimeOffset.UnixEpoch, WrittenBy = "CRIU", Processes = [],
        };
        var stream = new MemoryStream();
        CheckpointImageCodec.Write(new BinaryWriter(stream), image);
        stream.Position = 0;
        var back = CheckpointImageCodec.Read(new BinaryReader(stream));
        Assert.Null(back.ParentPath);
        Assert.Null(back.FrozenTime);
        Assert.Null(back.TotalTime);
        Assert.Null(back.Kernel);
        Assert.Null(back.Cpu);
        Assert.Empty(back.Processes);
    }

    private static CheckpointImage Sample() => new()
    {
        Path = "/images/app",
        RootProcessId = 4242,
        Name = "app",
        ProcessCount = 1,
        ThreadCount = 2,
        MemoryBytes = 8192,
        Pages = 2,
        ParentMemoryBytes = 4096,
        ParentPath = "/images/pre",
        PreDump = true,
        FileCount = 3,
        FrozenTime = TimeSpan.FromTicks(123456),
        TotalTime = TimeSpan.FromTicks(654321),
        Kernel = "6.18.44",
        Cpu = "AMD EPYC",
        CreatedAt = new DateTimeOffset(2026, 12, 7, 11, 30, 15, TimeSpan.FromMinutes(90)).AddTicks(7),
        HasDigests = true,
        WrittenBy = "CriuPS 0.1.0",
        Processes =
        [
            new ImageProcess
            {
                Id = 4242, ParentId = 1, ProcessGroupId = 4242, SessionId = 4200, Name = "app", State = "sleeping", MemoryBytes = 8192,
                Threads = [new ImageThread { Id = 4242, Name = "app", InstructionPointer = 0x7f0000001234 }, new ImageThread { Id = 4243, Name = "worker", InstructionPointer = 1 }],
                MemoryAreas = [new ImageMemoryArea { Start = 0x400000, End = 0x402000, Protection = "r-x", Kind = "file", Path = "/usr/bin/app", SavedBytes = 4096 }],
                Files = [new ImageFileDescriptor { Fd = 3, Type = "file", Target = "/tmp/x", Flags = 2, CloseOnExec = true, Position = 17 }],
            },
        ],
    };

    private static void AssertNothingDefault(object value, string path)
    {
        foreach (var property in value.GetType().GetProperties().Where(p => p.GetIndexParameters().Length == 0))
        {
            var item = property.GetValue(value);
            var where = $"{path}.{property.Name}";
            var empty = property.PropertyType.IsValueType ? Activator.CreateInstance(property.PropertyType) : null;
            Assert.True(item is not null && !Equals(item, empty) && item is not "", $"{where} is left at its default in the sample");
            if (item is IEnumerable list and not string)
            {
                foreach (var element in list)
                {
                    AssertNothingDefault(element, where + "[]");
                }
            }
        }
    }
}
