using System.Buffers;
using System.Buffers.Binary;
using Google.Protobuf;

namespace CriuPS.Engine.Images;

/// <summary>
/// Writes one image file: the header of its type, then length-prefixed entries and raw payloads,
/// buffered. The file is created exclusively (an existing file is never overwritten) with mode
/// 0600, as images hold a process's memory and credentials.
/// </summary>
public sealed class ImageWriter : IDisposable
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly Stream stream;

    private ImageWriter(Stream stream, string path, ImageType type)
    {
        this.stream = stream;
        Path = path;
        Type = type;
    }

    public string Path { get; }

    public ImageType Type { get; }

    /// <summary>Creates the file and writes the header of <paramref name="type"/> (none for raw images).</summary>
    public static ImageWriter Create(string path, ImageType type)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = 64 << 10,
        };
        // Always true here (CriuPS is Linux-only); the check tells the platform analyzer so.
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = OwnerOnly;
        return Create(new FileStream(path, options), path, type);
    }

    /// <summary>Writes the header of <paramref name="type"/> into a new file's stream, named <paramref name="path"/> in messages.</summary>
    public static ImageWriter Create(Stream stream, string path, ImageType type)
    {
        var writer = new ImageWriter(stream, path, type);
        stream.Write(type.HeaderBytes());
        return writer;
    }

    /// <summary>Creates <paramref name="type"/>'s file for <paramref name="id"/> in a directory.</summary>
    public static ImageWriter Create(string directory, ImageType type, string? id) =>
        Create(System.IO.Path.Combine(directory, type.FileName(id)), type);

    /// <summary>Writes an image that holds exactly one entry (inventory, core, mm, fs, ids...).</summary>
    public static void WriteSingle(string directory, ImageType type, string? id, IMessage entry)
    {
        using ImageWriter writer = Create(directory, type, id);
        writer.WriteEntry(entry);
    }

    /// <summary>
    /// Writes a whole image from decoded entries, as <see cref="ImageReader.ReadAll()"/> returns
    /// them; re-encoding what was read gives back the same bytes.
    /// </summary>
    public static void WriteAll(string path, ImageType type, IEnumerable<ImageEntry> entries)
    {
        using ImageWriter writer = Create(path, type);
        writer.WriteEntries(entries);
    }

    /// <summary>Writes decoded entries, each followed by its payload if it has one.</summary>
    public void WriteEntries(IEnumerable<ImageEntry> entries)
    {
        foreach (ImageEntry entry in entries)
        {
            WriteEntry(entry.Message);
            if (entry.Payload is not null)
                WriteRaw(entry.Payload);
        }
    }

    /// <summary>Writes one entry: its u32 length, then the message.</summary>
    public void WriteEntry(IMessage entry)
    {
        string name = NameOf(entry);
        if (!Type.Holds(entry))
            throw new ArgumentException($"{Path}: {Type.Name} images hold no {name} entries", nameof(entry));
        int size = entry.CalculateSize();
        // Prefix and message into one pooled buffer: WriteTo(Stream) would allocate a coder and its 4 KiB buffer
        // per entry, and a pagemap has thousands of entries.
        byte[] buffer = ArrayPool<byte>.Shared.Rent(sizeof(uint) + size);
        try
        {
            BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)size);
            entry.WriteTo(buffer.AsSpan(sizeof(uint), size));
            // Checked in its wire form, where a proto2 field is exactly when it is set.
            IReadOnlyList<string> missing = RequiredFields.MissingIn(name, buffer.AsSpan(sizeof(uint), size));
            if (missing.Count > 0)
                throw new ArgumentException(
                    $"{Path}: the {name} lacks required field(s) {string.Join(", ", missing)}; CRIU could not read it",
                    nameof(entry));
            stream.Write(buffer, 0, sizeof(uint) + size);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // The entry's message name, decoded once per writer (an image holds one or two kinds): compiled ahead of time,
    // Type.Name decodes the name and allocates it anew on each call, 5,000 times for a pagemap of 5,000 runs.
    private string NameOf(IMessage entry)
    {
        var type = entry.GetType();
        if (type != lastType)
        {
            lastType = type;
            lastName = type.Name;
        }
        return lastName!;
    }

    private Type? lastType;
    private string? lastName;

    /// <summary>Writes payload bytes that follow an entry (pipe data, page contents of a raw image...).</summary>
    public void WriteRaw(ReadOnlySpan<byte> data) => stream.Write(data);

    /// <summary>Flushes and closes the file.</summary>
    public void Dispose() => stream.Dispose();
}
