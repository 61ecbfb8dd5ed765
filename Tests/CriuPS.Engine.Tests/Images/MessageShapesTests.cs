using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Xunit;

namespace CriuPS.Engine.Tests.Images;

// The codec's own description of the messages (MessageShapes, from the FileDescriptorSet the build embeds) against the
// generated classes' reflection, which the tests may build; and the required fields' check on the wire.
public class MessageShapesTests
{
    [Fact]
    public void EveryMessageHasTheShapeOfItsGeneratedClass()
    {
        var generated = GeneratedProtoFiles.All().SelectMany(file => file.MessageTypes).ToList();
        Assert.Equal(generated.Select(m => m.Name).Order(), MessageShapes.All.Select(s => s.Name).Order());
        foreach (var message in generated)
        {
            var shape = MessageShapes.Of(message.Name);
            Assert.Equal(message.ClrType.Name, shape.Name);
            Assert.Equal(
                message.Fields.InFieldNumberOrder().Where(f => f.IsRequired).Select(f => (f.FieldNumber, f.Name)),
                shape.Required.Select(f => (f.Number, f.Name)));
            Assert.Equal(
                message.Fields.InFieldNumberOrder().Where(f => f.FieldType == FieldType.Message).Select(f => (f.FieldNumber, f.Name, f.MessageType.Name, f.IsRepeated)),
                shape.Messages.Select(f => (f.Number, f.Name, f.Message!.Name, f.Repeated)));
        }
    }

    [Fact]
    public void EveryEntryIsNamedAsItsMessage()
    {
        foreach (var schema in ImageTypes.All.SelectMany(t => new[] { t.Head, t.Entry, t.Entry?.Children }).OfType<EntrySchema>())
        {
            Assert.Equal(schema.Descriptor.Name, schema.Name);
        }
    }

    [Fact]
    public void EveryFileDescriptionCarriesItsId()
    {
        foreach (var field in FileEntry.Descriptor.Fields.InFieldNumberOrder().Where(f => f.FieldType == FieldType.Message))
        {
            bool hasId = field.MessageType.FindFieldByName("id") is { FieldType: FieldType.UInt32 };
            Assert.True(hasId == typeof(IFileDescription).IsAssignableFrom(field.MessageType.ClrType), $"FileEntry.{field.Name}");
        }
    }

    [Fact]
    public void ACompleteMessageLacksNothing()
    {
        var core = new CoreEntry
        {
            Mtype = CoreEntry.Types.March.X8664,
            Tc = new TaskCoreEntry { TaskState = 1, ExitCode = 0, Personality = 0, Flags = 0, BlkSigset = 0, Comm = "a" },
        };
        Assert.Empty(RequiredFields.MissingIn(core));
    }

    [Fact]
    public void MissingFieldsAreListedInFieldNumberOrderWithTheIndexOfRepeatedOnes()
    {
        var mm = new MmEntry
        {
            MmStartCode = 1, MmEndCode = 2, MmStartData = 3, MmEndData = 4, MmStartStack = 5, MmStartBrk = 6, MmBrk = 7,
            MmArgStart = 8, MmArgEnd = 9, MmEnvStart = 10, MmEnvEnd = 11, ExeFileId = 12,
        };
        mm.Vmas.Add(new VmaEntry { Start = 1, End = 2, Pgoff = 0, Shmid = 0, Prot = 0, Flags = 0, Status = 0, Fd = -1 });
        mm.Vmas.Add(new VmaEntry { Start = 1 });

        Assert.Equal(["vmas[1].end", "vmas[1].pgoff", "vmas[1].shmid", "vmas[1].prot", "vmas[1].flags", "vmas[1].status", "vmas[1].fd"],
            RequiredFields.MissingIn(mm));
    }

    [Fact]
    public void ANonRepeatedMessageWrittenTwiceIsCheckedMergedAsParsersMergeIt()
    {
        // tc in two occurrences, each with part of the required fields: a parser merges them into a complete tc.
        byte[] first = new CoreEntry { Mtype = CoreEntry.Types.March.X8664, Tc = new TaskCoreEntry { TaskState = 1, ExitCode = 0, Personality = 0 } }.ToByteArray();
        byte[] second = new CoreEntry { Tc = new TaskCoreEntry { Flags = 0, BlkSigset = 0, Comm = "a" } }.ToByteArray();
        byte[] both = [.. first, .. second];

        Assert.Empty(RequiredFields.MissingIn(nameof(CoreEntry), both));
        Assert.Empty(RequiredFields.MissingIn(CoreEntry.Parser.ParseFrom(both)));
        Assert.Equal(["tc.flags", "tc.blk_sigset", "tc.comm"], RequiredFields.MissingIn(nameof(CoreEntry), first));
    }

    [Fact]
    public void AFieldWrittenOtherwiseThanItsTypeIsUnsetAsParsersLeaveIt()
    {
        // pid (a uint32, field 1) as a fixed32, and tc (a message, field 3) as a varint: parsers keep both as unknown
        // fields, so pid is missing and tc absent (its own required fields are not asked for).
        byte[] pstree = [.. new PstreeEntry { Ppid = 0, Pgid = 1, Sid = 1 }.ToByteArray(), 0x0d, 1, 0, 0, 0];
        byte[] core = [.. new CoreEntry { Mtype = CoreEntry.Types.March.X8664 }.ToByteArray(), 0x18, 0x01];

        Assert.Equal(["pid"], RequiredFields.MissingIn(nameof(PstreeEntry), pstree));
        Assert.False(PstreeEntry.Parser.ParseFrom(pstree).HasPid);
        Assert.Empty(RequiredFields.MissingIn(nameof(CoreEntry), core));
        Assert.Null(CoreEntry.Parser.ParseFrom(core).Tc);
    }

    [Fact]
    public void FieldsNotInTheSchemaAreSkippedGroupsToo()
    {
        // A newer writer's fields: a varint, a fixed32, a fixed64, bytes and a group holding a varint (fields 100 to 104).
        byte[] unknown = [0xa0, 0x06, 0x01, 0xad, 0x06, 1, 2, 3, 4, 0xb1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, 0xba, 0x06, 2, 9, 9, 0xc3, 0x06, 0x08, 0x05, 0xc4, 0x06];
        byte[] pstree = [.. new PstreeEntry { Pid = 1, Ppid = 0, Pgid = 1 }.ToByteArray(), .. unknown];

        Assert.Equal(["sid"], RequiredFields.MissingIn(nameof(PstreeEntry), pstree));
        Assert.Equal(["sid"], RequiredFields.MissingIn(PstreeEntry.Parser.ParseFrom(pstree)));
    }
}
