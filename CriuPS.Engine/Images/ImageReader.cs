using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using CriuPS.Engine.Privileges;
using Google.Protobuf;

namespace CriuPS.Engine.Images;

/// <summary>
/// Reads one image file: checks its header, then hands out its length-prefixed protobuf entries
/// and the raw payloads that follow some of them. Anything that does not fit the format is
/// reported as an <see cref="ImageFormatException"/>; lengths are checked against the bytes left
/// before anything is allocated, so a corrupt file can neither exhaust memory nor stall a read.
/// </summary>
public sealed class ImageReader : IDisposable
{
    /// <summary>No CRIU entry comes anywhere near this; a larger length means corruption.</summary>
    public const int MaxEntrySize = 64 << 20;

    private const int LengthPrefixSize = sizeof(uint);

    private readonly FileStream stream;
    private readonly long length;
    // Each entry's bytes, read here and parsed from here: the messages keep nothing of them. A fresh array for each of
    // an image's 5,000 pagemap entries, with the prefix's and the parser's own, came to 330 bytes an entry.
    private byte[] entryBytes = [];

    private ImageReader(FileStream stream, string path, ImageType type)
    {
        this.stream = stream;
        length = stream.Length;
        Path = path;
        Type = type;
    }

    public string Path { get; }

    public ImageType Type { get; }

    /// <summary>The offset of the next byte to be read.</summary>
    public long Offset { get; private set; }

    private long BytesLeft => length - Offset;

    /// <summary>
    /// Opens an image and checks its header. Without a type, the file name decides, or failing
    /// that the magic; a raw image (pages-*.img) is refused as it has no entries to read.
    /// </summary>
    public static ImageReader Open(string path, ImageType? type = null)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 64 << 10);
        }
        catch (UnauthorizedAccessException e)
        {
            throw PathAccess.Denied(path, "the image file", inner: e);
        }
        try
        {
            var reader = new ImageReader(stream, path, type ?? ImageTypes.Identify(path) ?? IdentifyByContent(stream, path));
            if (reader.Type.IsRaw)
                throw new ArgumentException($"{path}: {reader.Type.Name} images are raw data, not entries", nameof(path));
            reader.ReadHeader();
            return reader;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Reads every entry of an image file; see <see cref="ReadAll()"/>.</summary>
    public static IReadOnlyList<ImageEntry> ReadAll(string path, ImageType? type = null)
    {
        using ImageReader reader = Open(path, type);
        return reader.ReadAll();
    }

    /// <summary>Reads an image that holds exactly one entry (inventory, core, mm, fs, ids...).</summary>
    public static T ReadSingle<T>(string directory, ImageType type, string? id) where T : class, IMessage<T>, new()
    {
        using ImageReader reader = Open(System.IO.Path.Combine(directory, type.FileName(id)), type);
        T entry = reader.ReadEntry<T>() ?? throw reader.Error(reader.Offset, $"empty image: expected one {Describe<T>()}");
        if (reader.BytesLeft > 0)
            throw reader.Error(reader.Offset, $"{reader.BytesLeft} more bytes after the single {Describe<T>()}");
        return entry;
    }

    /// <summary>Reads the next entry as a <typeparamref name="T"/>; null at the end of the file.</summary>
    public T? ReadEntry<T>() where T : class, IMessage<T>, new()
    {
        var entry = new T();
        if (!Type.Holds(entry))
            throw new InvalidOperationException($"{Path}: {Type.Name} images hold no {entry.GetType().Name} entries");
        return ReadMessageInto(entry, MessageName<T>.Value) ? entry : null;
    }

    /// <summary>Reads the next entry as a <typeparamref name="T"/>; false at the end of the file.</summary>
    public bool TryReadEntry<T>([NotNullWhen(true)] out T? entry) where T : class, IMessage<T>, new()
    {
        entry = ReadEntry<T>();
        return entry is not null;
    }

    /// <summary>Reads raw payload bytes, all of them or an error.</summary>
    public byte[] ReadRaw(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > BytesLeft)
            throw Error(Offset, $"truncated payload: {count} bytes expected, only {BytesLeft} left in the file");
        return ReadExactly(count);
    }

    /// <summary>
    /// Decodes the rest of the image with its type's layout: the head entry if the type has one,
    /// then entries to the end of the file, each with its payload and nested entries.
    /// </summary>
    public IReadOnlyList<ImageEntry> ReadAll()
    {
        var entries = new List<ImageEntry>();
        bool more = Type.Head is not EntrySchema head || ReadEntryWithPayload(head, entries);
        while (more)
            more = ReadEntryWithPayload(Type.Entry!, entries);
        return entries;
    }

    public void Dispose() => stream.Dispose();

    private static ImageType IdentifyByContent(FileStream stream, string path)
    {
        Span<byte> start = stackalloc byte[2 * sizeof(uint)];
        int read = stream.ReadAtLeast(start, start.Length, throwOnEndOfStream: false);
        stream.Position = 0;
        return ImageTypes.IdentifyByMagic(start[..read]).FirstOrDefault()
            ?? throw new ImageFormatException(path, 0, read < start.Length
                ? $"unknown image: the name is no image name and the file is too short ({read} bytes) for a header"
                : $"unknown image: the name is no image name and {DescribeHeader(start)}");
    }

    private void ReadHeader()
    {
        int size = Type.HeaderSize;
        if (length == 0)
            throw Error(0, $"empty file: a {Type.Name} image starts with a {size}-byte header");
        if (length < size)
            throw Error(0, $"truncated header: the file has {length} of the {size} header bytes");
        // Look at two words even when one is expected, to name what the file really is.
        byte[] start = ReadExactly((int)Math.Min(length, 2 * sizeof(uint)));
        if (!start.AsSpan(0, size).SequenceEqual(Type.HeaderBytes()))
            throw Error(0, $"wrong magic: expected {Type.HeaderText()} ({Type.Name}), found {DescribeHeader(start)}");
        stream.Position = Offset = size;
    }

    /// <summary>The magics found at the start of a file, and whose they are.</summary>
    private static string DescribeHeader(ReadOnlySpan<byte> start)
    {
        var words = new List<uint>();
        for (int i = 0; i + sizeof(uint) <= start.Length; i += sizeof(uint))
            words.Add(BinaryPrimitives.ReadUInt32LittleEndian(start[i..]));
        string hex = string.Join(' ', words.Select(ImageMagic.ToHex));
        IReadOnlyList<ImageType> owners = ImageTypes.IdentifyByMagic(start);
        if (owners.Count > 0)
            return $"{hex} (the header of {string.Join("/", owners.Select(t => t.Name))} images)";
        return words.Count > 0 && words[0] is ImageMagic.Common or ImageMagic.Service
            ? $"{hex} (a CRIU header, but of no known image kind)"
            : $"{hex} (not a CRIU image)";
    }

    private bool ReadEntryWithPayload(EntrySchema schema, List<ImageEntry> entries)
    {
        long entryOffset = Offset;
        IMessage message = schema.CreateMessage();
        if (!ReadMessageInto(message, schema.Name))
            return false;
        entries.Add(new ImageEntry(message, schema.Payload is PayloadRule rule ? ReadPayload(rule, message, entryOffset) : null));
        if (schema.Children is EntrySchema children)
        {
            ulong count = schema.ChildCountOf(message);
            for (ulong i = 0; i < count; i++)
                if (!ReadEntryWithPayload(children, entries))
                    throw Error(Offset, $"file ends after {i} of the {count} {children.Name} entries " +
                        $"announced by the {schema.Name} at offset {entryOffset}");
        }
        return true;
    }

    private byte[]? ReadPayload(PayloadRule rule, IMessage entry, long entryOffset)
    {
        if (rule.SizeAfter(entry, BytesLeft) is not ulong size)
            return null;
        if (size > (ulong)BytesLeft)
            throw Error(Offset, $"truncated payload: the {entry.GetType().Name} at offset {entryOffset} " +
                $"announces {size} bytes, only {BytesLeft} left in the file");
        if (size > (ulong)Array.MaxLength)
            throw Error(Offset, $"the payload of the {entry.GetType().Name} at offset {entryOffset} " +
                $"is {size} bytes, too large to hold in memory");
        return ReadExactly((int)size);
    }

    /// <summary>Reads one length-prefixed entry into a message named <paramref name="name"/>; false at a clean end of file.</summary>
    private bool ReadMessageInto(IMessage message, string name)
    {
        long prefixOffset = Offset;
        if (BytesLeft == 0)
            return false;
        if (BytesLeft < LengthPrefixSize)
            throw Error(prefixOffset, $"truncated length prefix: {BytesLeft} of {LengthPrefixSize} bytes");
        Span<byte> prefix = stackalloc byte[LengthPrefixSize];
        ReadExactly(prefix);
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(prefix);
        if (size > MaxEntrySize)
            throw Error(prefixOffset, $"absurd length {size} for a {name} entry (the limit is {MaxEntrySize >> 20} MiB)");
        if (size > BytesLeft)
            throw Error(prefixOffset, $"the {name} entry is {size} bytes long but only {BytesLeft} bytes are left in the file");
        if (entryBytes.Length < size)
            entryBytes = new byte[Math.Max(size, 256)];
        Span<byte> bytes = entryBytes.AsSpan(0, (int)size);
        ReadExactly(bytes);
        try
        {
            message.MergeFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw Error(prefixOffset, $"undecodable {name} entry ({size} bytes): {e.Message}", e);
        }
        IReadOnlyList<string> missing = RequiredFields.MissingIn(name, bytes);
        if (missing.Count > 0)
            throw Error(prefixOffset, $"the {name} entry lacks required field(s) {string.Join(", ", missing)}");
        return true;
    }

    private byte[] ReadExactly(int count)
    {
        var buffer = new byte[count];
        ReadExactly(buffer);
        return buffer;
    }

    private void ReadExactly(Span<byte> buffer)
    {
        stream.ReadExactly(buffer);
        Offset += buffer.Length;
    }

    private ImageFormatException Error(long offset, string problem, Exception? inner = null) =>
        new(Path, offset, problem, inner);

    private static string Describe<T>() where T : IMessage<T>, new() => MessageName<T>.Value;

    // A type's name is made anew at each ask in a native build (criups-engine): once per entry read, it showed in perf.
    private static class MessageName<T>
    {
        public static readonly string Value = typeof(T).Name;
    }
}
