using System.Text.Json;
using System.Text.Json.Nodes;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Privileges;
using CriuPS.Native.Interop;
using Google.Protobuf;

namespace CriuPS.Engine.Images.Json;

/// <summary>
/// Whole image files in crit's JSON form ("crit decode --pretty" / "crit encode"): {"magic": "CORE",
/// "entries": [...]}, each entry a message in <see cref="MessageJson"/>'s form with its payload, if any, as
/// "extra" (<see cref="PayloadJson"/>). Raw images (pages-*.img and the like), which crit refuses, are
/// {"magic": "PAGES", "extra": "base64..."}. Encoding what decoding gave yields the same bytes.
/// </summary>
public static class ImageJson
{
    /// <summary>Raw images beyond this are refused: their base64 text would not fit in a string.</summary>
    public const long MaxRawImageSize = 512L << 20;

    private const string MagicKey = "magic";
    private const string EntriesKey = "entries";
    private const string ExtraKey = "extra";

    /// <summary>Decodes one image file (its kind from its name, else from its magic).</summary>
    public static JsonObject Read(string path)
    {
        PathAccess.Demand(path, "the image file");
        if (Directory.Exists(path))
            throw new CheckpointException(CheckpointErrorKind.ImageNotFound, $"'{path}' is a directory, not an image file.", path,
                "Give one file of the image directory; Get-CheckpointImage reads whole directories.");
        if (!File.Exists(path))
            throw new CheckpointException(CheckpointErrorKind.ImageNotFound, $"There is no image file at '{path}'.", path);
        try
        {
            ImageType? type = ImageTypes.Identify(path);
            if (type is { IsRaw: true })
                return ReadRaw(path, type);
            using ImageReader reader = ImageReader.Open(path, type);
            return new JsonObject
            {
                [MagicKey] = reader.Type.MagicName,
                [EntriesKey] = Entries(reader.Type, reader.ReadAll()),
            };
        }
        catch (ImageFormatException e)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, e.Message, path, "Check that this is a CRIU image file and that it is complete.", e);
        }
    }

    /// <summary>
    /// Encodes an image in crit's JSON form into <paramref name="path"/>. Everything is checked before the file
    /// is written; an existing file is replaced, in one step, only with <paramref name="overwrite"/>.
    /// </summary>
    public static void Write(JsonObject image, string path, bool overwrite)
    {
        var (type, entries, raw) = Parse(image);
        if (Directory.Exists(path) || (File.Exists(path) && !overwrite))
            throw new CheckpointException(CheckpointErrorKind.ImagePathUnusable,
                Directory.Exists(path) ? $"'{path}' is a directory." : $"'{path}' exists.", path,
                Directory.Exists(path) ? "Name the image file to write." : "Add -Force to replace it, or choose another path.");
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        PathAccess.Demand(directory, "the directory of the image file", Faccessat.Write | Faccessat.Search);
        string temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():n}.tmp");
        try
        {
            if (raw is null)
            {
                ImageWriter.WriteAll(temporary, type, entries);
            }
            else
            {
                using ImageWriter writer = ImageWriter.Create(temporary, type);
                writer.WriteRaw(raw);
            }
            File.Move(temporary, path, overwrite);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    private static JsonObject ReadRaw(string path, ImageType type)
    {
        long length = new FileInfo(path).Length;
        if (length > MaxRawImageSize)
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"{path} holds {length:N0} bytes of raw data, more than the {MaxRawImageSize >> 20} MiB that can be shown as text.", path,
                "Copy raw images (pages, tarballs) as they are; only entry images need converting.");
        return new JsonObject { [MagicKey] = type.MagicName, [ExtraKey] = CritText.ToBase64Lines(File.ReadAllBytes(path)) };
    }

    private static JsonArray Entries(ImageType type, IReadOnlyList<ImageEntry> entries)
    {
        var json = new JsonArray();
        for (int i = 0; i < entries.Count;)
        {
            EntrySchema schema = i == 0 && type.Head is not null ? type.Head : type.Entry!;
            ImageEntry entry = entries[i++];
            JsonObject item = MessageJson.ToJson(entry.Message);
            if (entry.Payload is not null)
                item[ExtraKey] = PayloadJson.ToJson(entry.Message, entry.Payload);
            if (schema.Children is not null)
            {
                // crit shows nested entries (messages of a SysV queue) as the extra of their parent: entry, data, entry, data...
                var children = new JsonArray();
                for (ulong k = 0; k < schema.ChildCountOf(entry.Message); k++, i++)
                {
                    children.Add(MessageJson.ToJson(entries[i].Message));
                    children.Add(PayloadJson.ToJson(entries[i].Message, entries[i].Payload ?? []));
                }
                item[ExtraKey] = children;
            }
            json.Add(item);
        }
        return json;
    }

    private static (ImageType Type, List<ImageEntry> Entries, byte[]? Raw) Parse(JsonObject image)
    {
        try
        {
            ImageType type = TypeOf(image);
            string[] expected = type.IsRaw ? [MagicKey, ExtraKey] : [MagicKey, EntriesKey];
            if (image.Select(p => p.Key).FirstOrDefault(k => !expected.Contains(k)) is string unexpected)
                throw new ImageJsonException(unexpected, $"a {type.MagicName} image has only {string.Join(" and ", expected)}");
            if (type.IsRaw)
                return (type, [], PayloadJson.Base64(image[ExtraKey], ExtraKey));
            if (image[EntriesKey] is not JsonArray items)
                throw new ImageJsonException(EntriesKey, $"expected the list of entries, found {MessageJson.Describe(image[EntriesKey])}");
            var entries = new List<ImageEntry>();
            for (int i = 0; i < items.Count; i++)
            {
                string path = $"{EntriesKey}[{i}]";
                if (items[i] is not JsonObject item)
                    throw new ImageJsonException(path, $"expected an entry (an object), found {MessageJson.Describe(items[i])}");
                EntrySchema schema = i == 0 && type.Head is not null ? type.Head : type.Entry!;
                IMessage message = Message(schema, item, path);
                if (schema.Children is null)
                {
                    entries.Add(new ImageEntry(message, Payload(schema, message, item, path)));
                    continue;
                }
                entries.Add(new ImageEntry(message));
                entries.AddRange(Children(schema, message, item[ExtraKey], MessageJson.Join(path, ExtraKey)));
            }
            return (type, entries, null);
        }
        catch (ImageJsonException e)
        {
            throw new CheckpointException(CheckpointErrorKind.InvalidImageData, $"Not a valid image: {e.Message}.", e.JsonPath,
                "Compare with what Import-CheckpointImageFile gives for an image of the same kind.", e);
        }
    }

    private static ImageType TypeOf(JsonObject image)
    {
        if (image[MagicKey] is not JsonValue magic || magic.GetValueKind() != JsonValueKind.String)
            throw new ImageJsonException(MagicKey, $"expected the image's magic name (\"CORE\", \"MM\"...), found {MessageJson.Describe(image[MagicKey])}");
        string name = magic.GetValue<string>();
        // Kinds that share a magic (pagemap and pagemap-shmem...) share their layout too: the first one serves.
        return ImageTypes.All.FirstOrDefault(t => t.MagicName == name)
            ?? throw new ImageJsonException(MagicKey, $"'{name}' is no image magic (one of {string.Join(", ", ImageTypes.All.Select(t => t.MagicName).Distinct())})");
    }

    private static IMessage Message(EntrySchema schema, JsonObject item, string path)
    {
        IMessage message = schema.CreateMessage();
        MessageJson.FromJson(item, message, path, ignore: ExtraKey);
        IReadOnlyList<string> missing = RequiredFields.MissingIn(message);
        if (missing.Count > 0)
            throw new ImageJsonException(path, $"the {schema.Name} lacks required field(s) {string.Join(", ", missing)}");
        return message;
    }

    private static byte[]? Payload(EntrySchema schema, IMessage message, JsonObject item, string path)
    {
        bool given = item.ContainsKey(ExtraKey);
        if (schema.Payload is not PayloadRule rule)
            return given ? throw new ImageJsonException(MessageJson.Join(path, ExtraKey), $"a {schema.Name} carries no extra") : null;
        byte[] payload = given ? PayloadJson.FromJson(message, item[ExtraKey], MessageJson.Join(path, ExtraKey)) : [];
        ulong? size = rule.SizeAfter(message, payload.Length);
        if (size is null)
            return given ? throw new ImageJsonException(MessageJson.Join(path, ExtraKey), $"this {schema.Name} carries no extra") : null;
        if (size != (ulong)payload.Length)
            throw new ImageJsonException(given ? MessageJson.Join(path, ExtraKey) : path,
                $"the {schema.Name} announces {size} bytes of extra, {(given ? $"the extra holds {payload.Length}" : "and there is no extra")}");
        return payload;
    }

    private static IEnumerable<ImageEntry> Children(EntrySchema schema, IMessage parent, JsonNode? extra, string path)
    {
        EntrySchema children = schema.Children!;
        ulong count = schema.ChildCountOf(parent);
        if (extra is not JsonArray items || (ulong)items.Count != 2 * count)
            throw new ImageJsonException(path, $"expected {count} {children.Name} entries, each followed by its data, found {MessageJson.Describe(extra)}");
        var result = new List<ImageEntry>();
        for (int i = 0; i < items.Count; i += 2)
        {
            string itemPath = $"{path}[{i}]";
            if (items[i] is not JsonObject item)
                throw new ImageJsonException(itemPath, $"expected a {children.Name}, found {MessageJson.Describe(items[i])}");
            IMessage message = Message(children, item, itemPath);
            byte[] payload = PayloadJson.FromJson(message, items[i + 1], $"{path}[{i + 1}]");
            ulong? size = children.Payload?.SizeAfter(message, payload.Length);
            if (size != (ulong)payload.Length)
                throw new ImageJsonException($"{path}[{i + 1}]", $"the {children.Name} announces {size} bytes, the data holds {payload.Length}");
            result.Add(new ImageEntry(message, payload));
        }
        return result;
    }
}
