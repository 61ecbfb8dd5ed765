using System.Buffers.Binary;
using System.Runtime.Versioning;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;

namespace CriuPS.Engine.Tests.Images;

/// <summary>Images written by <see cref="ImageWriter"/> read back the same through <see cref="ImageReader"/>.</summary>
public sealed class ImageRoundTripTests : IDisposable
{
    private readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    [Fact]
    [SupportedOSPlatform("linux")]
    public void EntriesAndPayloadsReadBackInOrderFromAnOwnerOnlyFile()
    {
        string path = temp.PathOf("pipes-data.img");
        using (ImageWriter writer = ImageWriter.Create(path, ImageTypes.PipesData))
        {
            writer.WriteEntry(new PipeDataEntry { PipeId = 7, Bytes = 3, Size = 65536 });
            writer.WriteRaw("abc"u8);
            writer.WriteEntry(new PipeDataEntry { PipeId = 8, Bytes = 0 });
        }

        IReadOnlyList<ImageEntry> entries = ImageReader.ReadAll(path);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(2, entries.Count);
        Assert.Equal(new PipeDataEntry { PipeId = 7, Bytes = 3, Size = 65536 }, entries[0].Message);
        Assert.Equal("abc"u8.ToArray(), entries[0].Payload);
        Assert.Equal(new PipeDataEntry { PipeId = 8, Bytes = 0 }, entries[1].Message);
        Assert.Empty(Assert.IsType<byte[]>(entries[1].Payload));
    }

    [Fact]
    public void EntriesOfEverySizeReadBackWhereEachIsReadOverThePreviousOnesBytes()
    {
        // The reader parses each entry from one buffer: a short entry after a long one must not see the long one's tail,
        // nor a long one after a short one lose its own.
        string path = temp.PathOf("pagemap-1.img");
        var written = new List<PagemapEntry>
        {
            new() { Vaddr = 0x7f0000000000, CompatNrPages = 0, NrPages = 300000, Flags = 0x5, InParent = true },
            new() { Vaddr = 0x1000, CompatNrPages = 1 },
            new() { Vaddr = 0x7ffffffff000, CompatNrPages = 0, NrPages = 4000000000, Flags = 0xffffffff },
            new() { Vaddr = 0, CompatNrPages = 0 },
        };
        using (ImageWriter writer = ImageWriter.Create(path, ImageTypes.Pagemap))
        {
            writer.WriteEntry(new PagemapHead { PagesId = 1 });
            foreach (var entry in written)
            {
                writer.WriteEntry(entry);
            }
        }

        using ImageReader reader = ImageReader.Open(path);
        Assert.Equal(1u, reader.ReadEntry<PagemapHead>()!.PagesId);
        var read = new List<PagemapEntry>();
        while (reader.TryReadEntry<PagemapEntry>(out var entry))
        {
            read.Add(entry);
        }
        Assert.Equal(written, read);
    }

    [Fact]
    public void HeaderIsTheCommonMagicThenTheImageMagic()
    {
        ImageWriter.WriteSingle(temp.Path, ImageTypes.Fs, "42", new FsEntry { CwdId = 1, RootId = 2, Umask = 0x17 });

        byte[] bytes = File.ReadAllBytes(temp.PathOf("fs-42.img"));

        Assert.Equal(ImageMagic.Common, BinaryPrimitives.ReadUInt32LittleEndian(bytes));
        Assert.Equal(ImageMagic.Fs, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)));
        Assert.Equal((uint)(bytes.Length - 12), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)));
    }

    [Fact]
    public void InventoryHasItsMagicAloneAndStatsTheServiceMagic()
    {
        ImageWriter.WriteSingle(temp.Path, ImageTypes.Inventory, null, new InventoryEntry { ImgVersion = 2 });
        ImageWriter.WriteSingle(temp.Path, ImageTypes.Stats, "dump", new StatsEntry());

        byte[] inventory = File.ReadAllBytes(temp.PathOf("inventory.img"));
        byte[] stats = File.ReadAllBytes(temp.PathOf("stats-dump"));

        Assert.Equal(ImageMagic.Inventory, BinaryPrimitives.ReadUInt32LittleEndian(inventory));
        Assert.Equal(2u, ImageReader.ReadSingle<InventoryEntry>(temp.Path, ImageTypes.Inventory, null).ImgVersion);
        Assert.Equal(ImageMagic.Service, BinaryPrimitives.ReadUInt32LittleEndian(stats));
        Assert.Equal(ImageMagic.Stats, BinaryPrimitives.ReadUInt32LittleEndian(stats.AsSpan(4)));
    }

    [Fact]
    public void SingleEntryImagesRoundTripWithNestedMessages()
    {
        var core = new CoreEntry
        {
            Mtype = CoreEntry.Types.March.X8664,
            Tc = new TaskCoreEntry { TaskState = 1, ExitCode = 0, Personality = 0, Flags = 0, BlkSigset = 0x800, Comm = "test" },
            ThreadCore = new ThreadCoreEntry { FutexRla = 0x1000, FutexRlaLen = 24, SchedNice = -5 },
        };
        core.Tc.Sigactions.Add(new SaEntry { Sigaction = 0x401000, Flags = 0x4000000, Restorer = 0x402000, Mask = 0 });

        ImageWriter.WriteSingle(temp.Path, ImageTypes.Core, "31", core);

        Assert.Equal(core, ImageReader.ReadSingle<CoreEntry>(temp.Path, ImageTypes.Core, "31"));
    }

    [Fact]
    public void PagemapHeadPrecedesItsEntries()
    {
        string path = temp.PathOf("pagemap-5.img");
        var runs = new[]
        {
            new PagemapEntry { Vaddr = 0x400000, CompatNrPages = 0, Flags = 4, NrPages = 2 },
            new PagemapEntry { Vaddr = 0x7f0000000000, CompatNrPages = 0, Flags = 6, NrPages = 256 },
        };
        using (ImageWriter writer = ImageWriter.Create(path, ImageTypes.Pagemap))
        {
            writer.WriteEntry(new PagemapHead { PagesId = 3 });
            foreach (PagemapEntry run in runs)
                writer.WriteEntry(run);
        }

        IReadOnlyList<ImageEntry> entries = ImageReader.ReadAll(path);

        Assert.Equal(new PagemapHead { PagesId = 3 }, entries[0].Message);
        Assert.Equal(runs, entries.Skip(1).Select(e => e.Message));
        Assert.All(entries, e => Assert.Null(e.Payload));
    }

    [Fact]
    public void GhostFileContentFollowsItsHeadWholeOrInChunks()
    {
        var whole = new ImageEntry(new GhostFileEntry { Uid = 0, Gid = 0, Mode = 0x81a4, Size = 5 }, "hello"u8.ToArray());
        var chunked = new ImageEntry[]
        {
            new(new GhostFileEntry { Uid = 0, Gid = 0, Mode = 0x81a4, Size = 8196, Chunks = true }),
            new(new GhostChunkEntry { Len = 3, Off = 0 }, "abc"u8.ToArray()),
            new(new GhostChunkEntry { Len = 1, Off = 8195 }, "z"u8.ToArray()),
        };

        ImageWriter.WriteAll(temp.PathOf(ImageTypes.GhostFile.FileName(0x1f)), ImageTypes.GhostFile, [whole]);
        ImageWriter.WriteAll(temp.PathOf(ImageTypes.GhostFile.FileName(0x20)), ImageTypes.GhostFile, chunked);

        Assert.Equal(new[] { whole }, ImageReader.ReadAll(temp.PathOf("ghost-file-1f.img")), EntryComparer.Instance);
        Assert.Equal(chunked, ImageReader.ReadAll(temp.PathOf("ghost-file-20.img")), EntryComparer.Instance);
    }

    [Fact]
    public void SysVIpcPayloadsKeepTheirPadding()
    {
        var desc = new IpcDescEntry { Key = 1, Uid = 0, Gid = 0, Cuid = 0, Cgid = 0, Mode = 0x1b6, Id = 0 };
        var queue = new ImageEntry[]
        {
            new(new IpcMsgEntry { Desc = desc, Qbytes = 16384, Qnum = 2 }),
            new(new IpcMsg { Mtype = 1, Msize = 3 }, [1, 2, 3, 0, 0, 0, 0, 0]),
            new(new IpcMsg { Mtype = 2, Msize = 8 }, [1, 2, 3, 4, 5, 6, 7, 8]),
        };
        var semaphores = new ImageEntry[] { new(new IpcSemEntry { Desc = desc, Nsems = 3 }, [1, 0, 2, 0, 3, 0, 0, 0]) };

        ImageWriter.WriteAll(temp.PathOf("ipcns-msg-1.img"), ImageTypes.IpcnsMsg, queue);
        ImageWriter.WriteAll(temp.PathOf("ipcns-sem-1.img"), ImageTypes.IpcnsSem, semaphores);

        Assert.Equal(queue, ImageReader.ReadAll(temp.PathOf("ipcns-msg-1.img")), EntryComparer.Instance);
        Assert.Equal(semaphores, ImageReader.ReadAll(temp.PathOf("ipcns-sem-1.img")), EntryComparer.Instance);
    }

    [Fact]
    public void RawImagesHaveNoHeaderAndNoEntries()
    {
        string path = temp.PathOf("pages-1.img");
        using (ImageWriter writer = ImageWriter.Create(path, ImageTypes.Pages))
            writer.WriteRaw(new byte[4096]);

        Assert.Equal(4096, new FileInfo(path).Length);
        Assert.Throws<ArgumentException>(() => ImageReader.Open(path));
    }

    [Fact]
    public void ExistingFilesAreNeverOverwritten()
    {
        ImageWriter.WriteSingle(temp.Path, ImageTypes.Fs, "1", new FsEntry { CwdId = 1, RootId = 2 });

        Assert.Throws<IOException>(() => ImageWriter.WriteSingle(temp.Path, ImageTypes.Fs, "1", new FsEntry { CwdId = 3, RootId = 4 }));
        Assert.Equal(1u, ImageReader.ReadSingle<FsEntry>(temp.Path, ImageTypes.Fs, "1").CwdId);
    }

    [Fact]
    public void WriterRefusesEntriesCriuCouldNotRead()
    {
        using ImageWriter writer = ImageWriter.Create(temp.PathOf("pstree.img"), ImageTypes.Pstree);

        var foreign = Assert.Throws<ArgumentException>(() => writer.WriteEntry(new FsEntry { CwdId = 1, RootId = 2 }));
        var incomplete = Assert.Throws<ArgumentException>(() => writer.WriteEntry(new PstreeEntry { Pid = 1, Ppid = 0 }));

        Assert.Contains("pstree images hold no FsEntry entries", foreign.Message, StringComparison.Ordinal);
        Assert.Contains("pgid, sid", incomplete.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReaderRefusesEntriesOfAnotherImage()
    {
        ImageWriter.WriteSingle(temp.Path, ImageTypes.Fs, "1", new FsEntry { CwdId = 1, RootId = 2 });
        using ImageReader reader = ImageReader.Open(temp.PathOf("fs-1.img"));

        Assert.Throws<InvalidOperationException>(() => reader.ReadEntry<CoreEntry>());
    }

    /// <summary>Entries are equal when their messages are and their payloads hold the same bytes.</summary>
    private sealed class EntryComparer : IEqualityComparer<ImageEntry>
    {
        public static readonly EntryComparer Instance = new();

        public bool Equals(ImageEntry? x, ImageEntry? y) =>
            x is not null && y is not null && x.Message.Equals(y.Message) &&
            (x.Payload ?? []).AsSpan().SequenceEqual(y.Payload ?? []) && (x.Payload is null) == (y.Payload is null);

        public int GetHashCode(ImageEntry entry) => entry.Message.GetHashCode();
    }
}
