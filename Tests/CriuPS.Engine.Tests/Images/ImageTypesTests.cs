using System.Reflection;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using Google.Protobuf.Reflection;

namespace CriuPS.Engine.Tests.Images;

/// <summary>The registry of image kinds: names, magics, and coverage of the schema.</summary>
public sealed class ImageTypesTests
{
    public static TheoryData<string> TypeNames() => new(ImageTypes.All.Select(t => t.Name));

    [Fact]
    public void AllListsEveryTypeOnceUnderAUniqueName()
    {
        ImageType[] declared = typeof(ImageTypes).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.FieldType == typeof(ImageType))
            .Select(f => (ImageType)f.GetValue(null)!)
            .ToArray();

        Assert.Equal(declared.ToHashSet(), ImageTypes.All.ToHashSet());
        Assert.Equal(ImageTypes.All.Count, ImageTypes.All.Select(t => t.Name).Distinct().Count());
        Assert.Equal(ImageTypes.All.Count, ImageTypes.All.Select(t => t.FileNamePattern).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(TypeNames))]
    public void FileNamesIdentifyTheirOwnType(string name)
    {
        ImageType type = ImageTypes.All.Single(t => t.Name == name);
        string id = type.IdKind switch
        {
            ImageIdKind.Hex => "1f",
            ImageIdKind.Word => "dump",
            _ => "12",
        };

        Assert.Same(type, ImageTypes.Identify("/some/dir/" + type.FileName(id)));
    }

    [Theory]
    [InlineData("core-24504.img", "core")]
    [InlineData("pagemap-7.img", "pagemap")]
    [InlineData("pagemap-shmem-7.img", "pagemap-shmem")]
    [InlineData("netns-3.img", "netns")]
    [InlineData("netns-ct-3.img", "netns-ct")]
    [InlineData("tmpfs-dev-9.tar.gz", "tmpfs-dev")]
    [InlineData("stats-restore", "stats")]
    [InlineData("ghost-file-a0.img", "ghost-file")]
    [InlineData("core-x.img", null)]
    [InlineData("core-12.img.bak", null)]
    [InlineData("core-12.img\n", null)]
    [InlineData("dump.log", null)]
    public void IdentificationByNameIsExact(string fileName, string? expected) =>
        Assert.Equal(expected, ImageTypes.Identify(fileName)?.Name);

    [Fact]
    public void IdsAreFormattedInTheRadixOfTheName()
    {
        Assert.Equal("ghost-file-1f.img", ImageTypes.GhostFile.FileName(31));
        Assert.Equal("core-31.img", ImageTypes.Core.FileName(31));
        Assert.Equal("files.img", ImageTypes.Files.FileName(null));
    }

    [Fact]
    public void EveryHeaderIdentifiesItsTypeAndTypesSharingAMagicShareTheirLayout()
    {
        foreach (ImageType type in ImageTypes.All.Where(t => !t.IsRaw))
        {
            IReadOnlyList<ImageType> owners = ImageTypes.IdentifyByMagic([.. type.HeaderBytes(), 0, 0, 0, 0]);

            Assert.Contains(type, owners);
            Assert.All(owners, owner => Assert.Equal(
                type.Entry!.Descriptor.FullName + type.Head?.Descriptor.FullName,
                owner.Entry!.Descriptor.FullName + owner.Head?.Descriptor.FullName));
        }
        Assert.Equal(["pagemap", "pagemap-shmem"], ImageTypes.IdentifyByMagic(ImageTypes.ShmemPagemap.HeaderBytes()).Select(t => t.Name));
        Assert.Equal(ImageTypes.Pagemap.MagicName, ImageTypes.ShmemPagemap.MagicName);
        Assert.Empty(ImageTypes.IdentifyByMagic([0, 0, 0, 0, 0, 0, 0, 0]));
    }

    [Fact]
    public void EveryMessageOfTheSchemaBelongsToSomeImage()
    {
        var reachable = new HashSet<MessageDescriptor>();
        foreach (ImageType type in ImageTypes.All)
            foreach (EntrySchema? schema in new[] { type.Head, type.Entry, type.Entry?.Children })
                if (schema is not null)
                    Visit(schema.Descriptor, reachable);

        IEnumerable<MessageDescriptor> all = GeneratedProtoFiles.All().SelectMany(file => file.MessageTypes.SelectMany(Flatten));

        Assert.Equal([nameof(FieldDisplay)], all.Except(reachable).Select(m => m.Name));
    }

    [Fact]
    public void DisplayHintsAnnotateTheSameFieldsAsCriu()
    {
        FieldDisplay? Hint(MessageDescriptor message, string field) =>
            message.FindFieldByName(field).GetOptions()?.GetExtension(CriupsOptsExtensions.Display);

        Assert.True(Hint(VmaEntry.Descriptor, "start")!.Hex);
        Assert.Equal("mmap.prot", Hint(VmaEntry.Descriptor, "prot")!.Flags);
        Assert.True(Hint(GhostFileEntry.Descriptor, "rdev")!.Odev);
        Assert.Equal("gen", Hint(TaskCoreEntry.Descriptor, "task_state")!.Dict);
        Assert.Null(Hint(VmaEntry.Descriptor, "pgoff"));
    }

    private static void Visit(MessageDescriptor message, HashSet<MessageDescriptor> seen)
    {
        if (!seen.Add(message))
            return;
        foreach (FieldDescriptor field in message.Fields.InDeclarationOrder())
            if (field.FieldType == FieldType.Message)
                Visit(field.MessageType, seen);
    }

    private static IEnumerable<MessageDescriptor> Flatten(MessageDescriptor message) =>
        message.NestedTypes.SelectMany(Flatten).Prepend(message);
}
