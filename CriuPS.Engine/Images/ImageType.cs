using System.Buffers.Binary;
using System.Globalization;
using System.Text.RegularExpressions;
using Google.Protobuf;

namespace CriuPS.Engine.Images;

/// <summary>
/// Describes one kind of image file: its name, its header magics, and the entries it holds.
/// All instances live in <see cref="ImageTypes"/>.
/// </summary>
public sealed class ImageType
{
    private readonly Regex fileNameRegex;
    private readonly HashSet<Type> entryTypes;

    internal ImageType(string name, string magicName, string fileNamePattern, ImageIdKind idKind,
        uint? leadMagic, uint magic, EntrySchema? head, EntrySchema? entry)
    {
        Name = name;
        MagicName = magicName;
        FileNamePattern = fileNamePattern;
        IdKind = idKind;
        LeadMagic = leadMagic;
        Magic = magic;
        Head = head;
        Entry = entry;
        fileNameRegex = FileNameRegex(fileNamePattern, idKind);
        entryTypes = [.. new[] { head, entry }.OfType<EntrySchema>().SelectMany(schema => schema.AllMessageTypes())];
    }

    /// <summary>Short name, CRIU's image name in lower case with dashes: "core", "pagemap-shmem".</summary>
    public string Name { get; }

    /// <summary>The name crit shows for this image's magic ("CORE"); images sharing a magic share it.</summary>
    public string MagicName { get; }

    /// <summary>File name with a {0} placeholder for the id when there is one: "core-{0}.img".</summary>
    public string FileNamePattern { get; }

    public ImageIdKind IdKind { get; }

    /// <summary>
    /// <see cref="ImageMagic.Common"/> or <see cref="ImageMagic.Service"/> when the header has two
    /// magics; null for inventory.img (its own magic only) and for raw images (no header).
    /// </summary>
    public uint? LeadMagic { get; }

    /// <summary>The image's own magic; <see cref="ImageMagic.Raw"/> for raw images.</summary>
    public uint Magic { get; }

    /// <summary>The single entry that starts the image (PagemapHead, GhostFileEntry), or null.</summary>
    public EntrySchema? Head { get; }

    /// <summary>The entries that repeat up to the end of the file; null for raw images.</summary>
    public EntrySchema? Entry { get; }

    /// <summary>Raw images hold plain data (page contents, tarballs, netlink dumps), no entries.</summary>
    public bool IsRaw => Entry is null;

    /// <summary>Size of the header that precedes the first entry.</summary>
    public int HeaderSize => HeaderWords().Count() * sizeof(uint);

    /// <summary>The file name for an id; the id is ignored by names without a placeholder.</summary>
    public string FileName(string? id)
    {
        if (IdKind == ImageIdKind.None)
            return FileNamePattern;
        ArgumentException.ThrowIfNullOrEmpty(id);
        return string.Format(CultureInfo.InvariantCulture, FileNamePattern, id);
    }

    /// <summary>The file name for a numeric id, in the radix the image's name uses.</summary>
    public string FileName(ulong id) =>
        FileName(id.ToString(IdKind == ImageIdKind.Hex ? "x" : "d", CultureInfo.InvariantCulture));

    /// <summary>Whether a file name (without directory) is a name of this kind of image.</summary>
    public bool MatchesFileName(string fileName) => fileNameRegex.IsMatch(fileName);

    /// <summary>Whether entries of this message's type belong in this image.</summary>
    public bool Holds(IMessage entry) => entryTypes.Contains(entry.GetType());

    /// <summary>The header bytes that open a file of this type.</summary>
    internal byte[] HeaderBytes()
    {
        uint[] words = [.. HeaderWords()];
        var header = new byte[words.Length * sizeof(uint)];
        for (int i = 0; i < words.Length; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(i * sizeof(uint)), words[i]);
        return header;
    }

    /// <summary>The header as text for messages: "0x54564319 0x55053847".</summary>
    internal string HeaderText() => string.Join(' ', HeaderWords().Select(ImageMagic.ToHex));

    public override string ToString() => Name;

    private IEnumerable<uint> HeaderWords()
    {
        if (LeadMagic is uint lead)
            yield return lead;
        if (Magic != ImageMagic.Raw)
            yield return Magic;
    }

    // Ids are restricted to their character class so that "pagemap-{0}.img" does not claim
    // "pagemap-shmem-5.img", nor "netns-{0}.img" claim "netns-ct-5.img".
    private static Regex FileNameRegex(string pattern, ImageIdKind kind)
    {
        string escaped = Regex.Escape(pattern);
        string id = kind switch
        {
            ImageIdKind.None => "",
            ImageIdKind.Decimal => "[0-9]+",
            ImageIdKind.Hex => "[0-9a-f]+",
            ImageIdKind.Word => "[a-z]+",
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
        };
        return new Regex(@"\A" + escaped.Replace(@"\{0}", id) + @"\z", RegexOptions.CultureInvariant);
    }
}
