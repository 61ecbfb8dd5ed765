using System.Text.Json.Nodes;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Json;
using CriuPS.Engine.Images.Proto;

namespace CriuPS.Engine.Tests.Images;

/// <summary>
/// Decoding an image to JSON text and encoding that text again gives the very same bytes, for every image file
/// of the interop vectors (raw pages included); and what the hints cover survives the trip both ways.
/// </summary>
public sealed class JsonRoundTripTests
{
    public static TheoryData<string, string> ImageFiles()
    {
        var data = new TheoryData<string, string>();
        foreach (InteropVector vector in InteropVector.All)
            foreach (string path in Directory.GetFiles(vector.ImagesDirectory).Order(StringComparer.Ordinal))
                if (Path.GetFileName(path) != "dump.log")
                    data.Add(vector.Name, Path.GetFileName(path));
        return data;
    }

    [Theory]
    [MemberData(nameof(ImageFiles))]
    public void ImageSurvivesJsonTextByteForByte(string vectorName, string fileName)
    {
        string path = InteropVector.Get(vectorName).PathOf(fileName);
        string text = ImageJson.Read(path).ToJsonString();
        using var temp = new TempDirectory();
        string copy = temp.PathOf(fileName);
        ImageJson.Write((JsonObject)JsonNode.Parse(text)!, copy, overwrite: false);
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(copy));
    }

    [Fact]
    public void SocketsShowTheirAddressesKindsAndNamesAsCritDoes()
    {
        const string json = """
            {"magic": "INETSK", "entries": [{"id": 1, "ino": 2, "family": "INET6", "type": "STREAM", "proto": "TCP",
              "state": "LISTEN", "src_port": 80, "dst_port": 0, "flags": "0x800", "backlog": 5,
              "src_addr": ["fe80::1:0:0:1"], "dst_addr": ["::"],
              "fown": {"uid": 0, "euid": 0, "signum": 0, "pid_type": 0, "pid": 0},
              "opts": {"so_sndbuf": 1, "so_rcvbuf": 2, "so_snd_tmo_sec": 3, "so_snd_tmo_usec": 4, "so_rcv_tmo_sec": 5, "so_rcv_tmo_usec": 6}}]}
            """;
        var entry = (InetSkEntry)RoundTrip(json, "inetsk.img").Single().Message;
        Assert.Equal(10u, entry.Family);
        Assert.Equal(6u, entry.Proto);
        Assert.Equal(10u, entry.State);
        Assert.Equal(0x800u, entry.Flags);
        // Network order in memory, read as little-endian words.
        Assert.Equal([0x000080feu, 0, 0x00000100, 0x01000000], entry.SrcAddr);
        Assert.Equal([0u, 0, 0, 0], entry.DstAddr);
    }

    [Theory]
    [InlineData("127.0.0.1", new uint[] { 0x0100007f })]
    [InlineData("10.1.2.3", new uint[] { 0x0302010a })]
    public void Ipv4AddressesAreOneWord(string address, uint[] words)
    {
        string json = $$$"""
            {"magic": "INETSK", "entries": [{"id": 1, "ino": 2, "family": "INET", "type": "DGRAM", "proto": "UDP", "state": "CLOSE",
              "src_port": 53, "dst_port": 0, "flags": "0x0", "backlog": 0, "src_addr": ["{{{address}}}"],
              "fown": {"uid": 0, "euid": 0, "signum": 0, "pid_type": 0, "pid": 0},
              "opts": {"so_sndbuf": 1, "so_rcvbuf": 2, "so_snd_tmo_sec": 3, "so_snd_tmo_usec": 4, "so_rcv_tmo_sec": 5, "so_rcv_tmo_usec": 6}}]}
            """;
        Assert.Equal(words, ((InetSkEntry)RoundTrip(json, "inetsk.img").Single().Message).SrcAddr);
    }

    [Theory]
    [InlineData(new byte[] { 0, (byte)'/', (byte)'s', (byte)'k' }, "=00/sk")]
    [InlineData(new byte[] { (byte)'a', (byte)'=', (byte)'b' }, "a=3Db")]
    [InlineData(new byte[] { (byte)'l', (byte)' ', (byte)'\n', (byte)'n', (byte)'\t' }, "l=20\nn=09")]
    [InlineData(new byte[] { (byte)'.' }, "=2E")]
    [InlineData(new byte[] { 0xff, (byte)'e', (byte)' ' }, "=FFe=20")]
    public void UnixSocketNamesAreQuotedPrintableAsPythonsQuopriWritesThem(byte[] name, string expected)
    {
        Assert.Equal(expected, CritText.ToQuotedPrintable(name));
        Assert.Equal(name, CritText.FromQuotedPrintable(expected));
    }

    [Fact]
    public void LongQuotedPrintableLinesGetSoftBreaks()
    {
        byte[] name = Enumerable.Repeat((byte)'x', 100).ToArray();
        string text = CritText.ToQuotedPrintable(name);
        Assert.Equal(new string('x', 75) + "=\n" + new string('x', 25), text);
        Assert.Equal(name, CritText.FromQuotedPrintable(text));
    }

    [Fact]
    public void Base64IsInLinesOf76AsPythonsEncodebytesWritesIt()
    {
        Assert.Equal("", CritText.ToBase64Lines([]));
        Assert.Equal("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\nOTo7\n",
            CritText.ToBase64Lines(Enumerable.Range(0, 60).Select(i => (byte)i).ToArray()));
    }

    [Fact]
    public void QueuesSemaphoresAndMessagesComeAsCritShowsThem()
    {
        const string tcp = """
            {"magic": "TCP_STREAM", "entries": [{"inq_len": 3, "inq_seq": 1, "outq_len": 2, "outq_seq": 2, "opt_mask": "0x7",
              "snd_wscale": 7, "mss_clamp": 1460, "extra": {"inq": "YWJj\n", "outq": "ZGU=\n"}}]}
            """;
        var stream = RoundTrip(tcp, "tcp-stream-1a.img").Single();
        Assert.Equal("abcde"u8.ToArray(), stream.Payload);

        const string sem = """
            {"magic": "IPCNS_SEM", "entries": [{"desc": {"key": 1, "uid": 0, "gid": 0, "cuid": 0, "cgid": 0, "mode": 438, "id": 5},
              "nsems": 3, "extra": [1, 2, 65535]}]}
            """;
        Assert.Equal(new byte[] { 1, 0, 2, 0, 255, 255, 0, 0 }, RoundTrip(sem, "ipcns-sem-1.img").Single().Payload);

        const string msg = """
            {"magic": "IPCNS_MSG", "entries": [{"desc": {"key": 1, "uid": 0, "gid": 0, "cuid": 0, "cgid": 0, "mode": 438, "id": 5},
              "qbytes": 16384, "qnum": 2, "extra": [{"mtype": 1, "msize": 3}, "YWJj\n", {"mtype": 2, "msize": 0}, ""]}]}
            """;
        var queue = RoundTrip(msg, "ipcns-msg-1.img");
        Assert.Equal(3, queue.Count);
        Assert.Equal(new byte[] { (byte)'a', (byte)'b', (byte)'c', 0, 0, 0, 0, 0 }, queue[1].Payload);
    }

    [Fact]
    public void DeviceNumbersAreMajorColonMinorInTheKernelsOrGlibcsEncoding()
    {
        using var temp = new TempDirectory();
        string path = temp.PathOf("reg-files.img");
        const string json = """
            {"magic": "REG_FILES", "entries": [{"id": 1, "flags": "O_RDWR | O_APPEND | 0x10000000", "pos": 0,
              "fown": {"uid": 0, "euid": 0, "signum": 0, "pid_type": 0, "pid": 0}, "name": "/dev/null"}]}
            """;
        ImageJson.Write((JsonObject)JsonNode.Parse(json)!, path, overwrite: false);
        var entry = (RegFileEntry)ImageReader.ReadAll(path).Single().Message;
        Assert.Equal(0x2u | 0x400 | 0x10000000, entry.Flags);
        Assert.Equal("O_RDWR | O_APPEND | 0x10000000", (string)ImageJson.Read(path)["entries"]![0]!["flags"]!);
    }

    [Theory]
    [InlineData("""{"magic": "NOPE", "entries": []}""", "magic", "'NOPE' is no image magic")]
    [InlineData("""{"magic": "PSTREE", "entries": [{"pid": 1, "ppid": 0, "pgid": 1}]}""", "entries[0]", "lacks required field(s) sid")]
    [InlineData("""{"magic": "PSTREE", "entries": [{"pid": 1, "ppid": 0, "pgid": 1, "sid": 1, "color": 3}]}""", "entries[0]", "has no field 'color'")]
    [InlineData("""{"magic": "PSTREE", "entries": [{"pid": -1, "ppid": 0, "pgid": 1, "sid": 1}]}""", "entries[0].pid", "does not fit")]
    [InlineData("""{"magic": "PSTREE", "entries": [{"pid": "twelve", "ppid": 0, "pgid": 1, "sid": 1}]}""", "entries[0].pid", "not a number")]
    [InlineData("""{"magic": "PSTREE", "entries": [{"pid": 1, "ppid": 0, "pgid": 1, "sid": 1, "extra": "AA=="}]}""", "entries[0].extra", "carries no extra")]
    [InlineData("""{"magic": "PIPES_DATA", "entries": [{"pipe_id": 1, "bytes": 5, "extra": "YWJj\n"}]}""", "entries[0].extra", "announces 5 bytes")]
    [InlineData("""{"magic": "VMAS", "entries": [{"start": "0x1000", "end": "0x2000", "pgoff": 0, "shmid": 0, "prot": "PROT_READ | PROT_SING", "flags": "MAP_PRIVATE", "status": "", "fd": -1}]}""", "entries[0].prot", "'PROT_SING' is no mmap.prot flag")]
    [InlineData("""{"magic": "CORE", "entries": [{"mtype": "Z80"}]}""", "entries[0].mtype", "is no March")]
    [InlineData("""{"magic": "CORE", "entries": [{"mtype": 99999999999}]}""", "entries[0].mtype", "does not fit")]
    [InlineData("""{"magic": "PSTREE", "entries": [{"pid": 1.5, "ppid": 0, "pgid": 1, "sid": 1}]}""", "entries[0].pid", "not a whole number")]
    [InlineData("""{"magic": "PSTREE", "entries": {"pid": 1}}""", "entries", "expected the list of entries")]
    public void InvalidDocumentsAreRefusedSayingWhereAndWhyAndNothingIsWritten(string json, string where, string why)
    {
        using var temp = new TempDirectory();
        string path = temp.PathOf("image.img");
        var error = Assert.Throws<CheckpointException>(() => ImageJson.Write((JsonObject)JsonNode.Parse(json)!, path, overwrite: false));
        Assert.Equal(CheckpointErrorKind.InvalidImageData, error.Kind);
        Assert.Equal(where, error.Target);
        Assert.Contains(why, error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(temp.Path, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public void AnExistingFileIsReplacedOnlyWhenAsked()
    {
        using var temp = new TempDirectory();
        string path = temp.PathOf("pstree.img");
        var tree = (JsonObject)JsonNode.Parse("""{"magic": "PSTREE", "entries": [{"pid": 1, "ppid": 0, "pgid": 1, "sid": 1}]}""")!;
        File.WriteAllText(path, "precious");
        var error = Assert.Throws<CheckpointException>(() => ImageJson.Write(tree, path, overwrite: false));
        Assert.Equal(CheckpointErrorKind.ImagePathUnusable, error.Kind);
        Assert.Equal("precious", File.ReadAllText(path));
        ImageJson.Write(tree, path, overwrite: true);
        Assert.Equal(1u, ((PstreeEntry)ImageReader.ReadAll(path).Single().Message).Pid);
    }

    [Fact]
    public void FilesThatAreNoImagesAreRefusedAsSuch()
    {
        using var temp = new TempDirectory();
        string log = temp.PathOf("dump.log");
        File.WriteAllText(log, "(00.000) hello");
        Assert.Equal(CheckpointErrorKind.ImageCorrupt, Assert.Throws<CheckpointException>(() => ImageJson.Read(log)).Kind);
        Assert.Equal(CheckpointErrorKind.ImageNotFound, Assert.Throws<CheckpointException>(() => ImageJson.Read(temp.Path)).Kind);
        Assert.Equal(CheckpointErrorKind.ImageNotFound, Assert.Throws<CheckpointException>(() => ImageJson.Read(temp.PathOf("none.img"))).Kind);
    }

    // Writes the JSON as FILE, checks that reading it back gives the same JSON, and returns the entries as the codec reads them.
    private static IReadOnlyList<ImageEntry> RoundTrip(string json, string fileName)
    {
        using var temp = new TempDirectory();
        string path = temp.PathOf(fileName);
        var document = (JsonObject)JsonNode.Parse(json)!;
        ImageJson.Write(document, path, overwrite: false);
        Assert.True(JsonNode.DeepEquals(document, JsonNode.Parse(ImageJson.Read(path).ToJsonString())),
            $"{ImageJson.Read(path).ToJsonString()} differs from {json}");
        return ImageReader.ReadAll(path);
    }
}
