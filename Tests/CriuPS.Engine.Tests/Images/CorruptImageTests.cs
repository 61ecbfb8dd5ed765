using System.Buffers.Binary;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using Google.Protobuf;

namespace CriuPS.Engine.Tests.Images;

/// <summary>Damaged files give an <see cref="ImageFormatException"/> naming the file and the damage.</summary>
public sealed class CorruptImageTests : IDisposable
{
    private static readonly byte[] PstreeHeader = Header(ImageMagic.Common, ImageMagic.Pstree);
    private static readonly PstreeEntry Process = new() { Pid = 10, Ppid = 1, Pgid = 10, Sid = 10 };

    private readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    [Fact]
    public void EmptyFile()
    {
        ImageFormatException e = Read("pstree.img", []);

        Assert.Contains("empty file", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, e.Offset);
    }

    [Fact]
    public void FileShorterThanTheHeader()
    {
        ImageFormatException e = Read("pstree.img", PstreeHeader[..5]);

        Assert.Contains("truncated header: the file has 5 of the 8 header bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ForeignFile()
    {
        ImageFormatException e = Read("pstree.img", [0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0, 0, 0, 0, 0]);

        Assert.Contains("wrong magic: expected 0x54564319 0x50273030 (pstree), found 0x464c457f 0x00010102 (not a CRIU image)",
            e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ImageOfAnotherKind()
    {
        ImageFormatException e = Read("core-10.img", [.. PstreeHeader, .. Entry(Process)]);

        Assert.Contains("expected 0x54564319 0x55053847 (core), found 0x54564319 0x50273030 (the header of pstree images)",
            e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownNameAndUnknownMagic()
    {
        ImageFormatException e = Read("mystery.bin", Header(ImageMagic.Common, 0x12345678));

        Assert.Contains("0x54564319 0x12345678 (a CRIU header, but of no known image kind)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TruncatedLengthPrefix()
    {
        ImageFormatException e = Read("pstree.img", [.. PstreeHeader, .. Entry(Process), 3, 0]);

        Assert.Contains("truncated length prefix: 2 of 4 bytes", e.Message, StringComparison.Ordinal);
        Assert.Equal(8 + Entry(Process).Length, e.Offset);
    }

    [Fact]
    public void EntryLongerThanTheRestOfTheFile()
    {
        byte[] entry = Entry(Process);

        ImageFormatException e = Read("pstree.img", [.. PstreeHeader, .. entry[..^2]]);

        Assert.Contains($"the PstreeEntry entry is {entry.Length - 4} bytes long but only {entry.Length - 6} bytes are left",
            e.Message, StringComparison.Ordinal);
        Assert.Equal(8, e.Offset);
    }

    [Fact]
    public void AbsurdEntryLength()
    {
        ImageFormatException e = Read("pstree.img", [.. PstreeHeader, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]);

        Assert.Contains("absurd length 4294967295 for a PstreeEntry entry (the limit is 64 MiB)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GarbageInsteadOfProtobuf()
    {
        ImageFormatException e = Read("pstree.img", [.. PstreeHeader, 3, 0, 0, 0, 0xff, 0xff, 0xff]);

        Assert.Contains("undecodable PstreeEntry entry (3 bytes)", e.Message, StringComparison.Ordinal);
        Assert.IsType<InvalidProtocolBufferException>(e.InnerException);
    }

    [Fact]
    public void MissingRequiredFieldsAreNamed()
    {
        byte[] partial = new PstreeEntry { Pid = 10, Ppid = 1 }.ToByteArray();

        ImageFormatException e = Read("pstree.img", [.. PstreeHeader, .. Prefix(partial.Length), .. partial]);

        Assert.Contains("the PstreeEntry entry lacks required field(s) pgid, sid", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingRequiredFieldsOfNestedMessagesAreNamedByPath()
    {
        var core = new CoreEntry { Mtype = CoreEntry.Types.March.X8664, Tc = new TaskCoreEntry { TaskState = 1 } };

        ImageFormatException e = Read("core-1.img", [.. Header(ImageMagic.Common, ImageMagic.Core), .. Entry(core)]);

        Assert.Contains("lacks required field(s) tc.exit_code, tc.personality, tc.flags, tc.blk_sigset, tc.comm",
            e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PayloadCutShort()
    {
        var data = new PipeDataEntry { PipeId = 1, Bytes = 11 };

        ImageFormatException e = Read("pipes-data.img", [.. Header(ImageMagic.Common, ImageMagic.PipesData), .. Entry(data), .. "hel"u8]);

        Assert.Contains("truncated payload: the PipeDataEntry at offset 8 announces 11 bytes, only 3 left in the file",
            e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NestedEntriesCutShort()
    {
        var queue = new IpcMsgEntry
        {
            Desc = new IpcDescEntry { Key = 1, Uid = 0, Gid = 0, Cuid = 0, Cgid = 0, Mode = 0x1b6, Id = 0 },
            Qbytes = 16384,
            Qnum = 2,
        };
        byte[] file = [.. Header(ImageMagic.Common, ImageMagic.IpcnsMsg), .. Entry(queue), .. Entry(new IpcMsg { Mtype = 1, Msize = 1 }), 7, 0, 0, 0, 0, 0, 0, 0];

        ImageFormatException e = Read("ipcns-msg-1.img", file);

        Assert.Contains("file ends after 1 of the 2 IpcMsg entries announced by the IpcMsgEntry at offset 8", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RealImageCutInHalf()
    {
        InteropVector vector = InteropVector.Get(InteropVector.DynamicName);
        byte[] core = File.ReadAllBytes(vector.PathOf($"core-{vector.Pid}.img"));

        ImageFormatException e = Read($"core-{vector.Pid}.img", core[..(core.Length / 2)]);

        Assert.Contains($"the CoreEntry entry is {core.Length - 12} bytes long but only {core.Length / 2 - 12} bytes are left",
            e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RandomDamageOnlyEverGivesFormatErrors()
    {
        InteropVector vector = InteropVector.Get(InteropVector.DynamicName);
        string[] sources = [$"core-{vector.Pid}.img", $"mm-{vector.Pid}.img", $"pagemap-{vector.Pid}.img", "files.img", "pipes-data.img"];
        var random = new Random(4242);
        int detected = 0;

        for (int i = 0; i < 250; i++)
        {
            string fileName = sources[i % sources.Length];
            byte[] bytes = File.ReadAllBytes(vector.PathOf(fileName));
            bytes = random.Next(3) == 0 ? bytes[..random.Next(bytes.Length)] : bytes;
            if (bytes.Length > 0)
                bytes[random.Next(bytes.Length)] ^= (byte)random.Next(1, 256);
            string path = temp.PathOf(fileName);
            File.WriteAllBytes(path, bytes);
            try
            {
                ImageReader.ReadAll(path);
            }
            catch (ImageFormatException)
            {
                detected++;
            }
        }

        // Flipped payload bytes or field values cannot be noticed; broken structure must be.
        Assert.InRange(detected, 125, 250);
    }

    private ImageFormatException Read(string fileName, byte[] content)
    {
        string path = temp.PathOf(fileName);
        File.WriteAllBytes(path, content);

        var e = Assert.Throws<ImageFormatException>(() => ImageReader.ReadAll(path));

        Assert.Equal(path, e.Path);
        Assert.StartsWith(path + ": ", e.Message, StringComparison.Ordinal);
        return e;
    }

    private static byte[] Header(uint lead, uint magic)
    {
        var header = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(header, lead);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), magic);
        return header;
    }

    private static byte[] Prefix(int length)
    {
        var prefix = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(prefix, (uint)length);
        return prefix;
    }

    private static byte[] Entry(IMessage message) => [.. Prefix(message.CalculateSize()), .. message.ToByteArray()];
}
