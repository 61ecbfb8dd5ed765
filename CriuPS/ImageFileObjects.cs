using System.Collections;
using System.Globalization;
using System.Management.Automation;
using System.Numerics;
using System.Text.Json;
using System.Text.Json.Nodes;
using CriuPS.Engine.Errors;

namespace CriuPS;

/// <summary>
/// Turns the engine's JSON form of an image file into PowerShell objects and back. Objects keep the JSON's
/// property order, so ConvertTo-Json renders them as crit does; anything ConvertFrom-Json gives back (custom
/// objects, arrays, Int64 or BigInteger numbers), hashtables and the objects Import-CheckpointImageFile wrote
/// convert back.
/// </summary>
internal static class ImageFileObjects
{
    /// <summary>The type name the decoded image objects carry, for formatting only.</summary>
    public const string TypeName = "CriuPS.ImageFile";

    private const int MaxDepth = 64;

    public static PSObject ToPSObject(JsonObject image)
    {
        var result = (PSObject)ToPS(image)!;
        result.TypeNames.Insert(0, TypeName);
        return result;
    }

    public static JsonObject ToJson(object input)
    {
        return ToNode(input, "", 0) as JsonObject
            ?? throw Invalid("", $"an image is an object with magic and entries, not {Describe(input)}");
    }

    private static object? ToPS(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return null;
            case JsonObject json:
                var result = new PSObject();
                foreach (var (name, value) in json)
                {
                    result.Properties.Add(new PSNoteProperty(name, ToPS(value)));
                }
                return result;
            case JsonArray list:
                return list.Select(ToPS).ToArray();
        }
        return node.GetValueKind() switch
        {
            JsonValueKind.String => node.GetValue<string>(),
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => Number(node.ToJsonString()),
        };
    }

    // Int64 where it fits (as ConvertFrom-Json gives), UInt64 above; the casts keep C# from making every branch a double.
    private static object Number(string literal) =>
        long.TryParse(literal, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long signed) ? (object)signed
        : ulong.TryParse(literal, NumberStyles.None, CultureInfo.InvariantCulture, out ulong unsigned) ? (object)unsigned
        : double.Parse(literal, NumberStyles.Float, CultureInfo.InvariantCulture);

    private static JsonNode? ToNode(object? value, string path, int depth)
    {
        if (depth > MaxDepth)
        {
            throw Invalid(path, $"nested more than {MaxDepth} levels deep");
        }
        if (value is PSObject wrapped)
        {
            if (wrapped.BaseObject is PSCustomObject)
            {
                var json = new JsonObject();
                foreach (var property in wrapped.Properties.Where(p => p.MemberType == PSMemberTypes.NoteProperty))
                {
                    json[property.Name] = ToNode(property.Value, Join(path, property.Name), depth + 1);
                }
                return json;
            }
            value = wrapped.BaseObject;
        }
        switch (value)
        {
            case null:
                return null;
            case string text:
                return JsonValue.Create(text);
            case char character:
                return JsonValue.Create(character.ToString());
            case bool flag:
                return JsonValue.Create(flag);
            case byte or sbyte or short or ushort or int or long:
                return JsonValue.Create(Convert.ToInt64(value, CultureInfo.InvariantCulture));
            case uint or ulong:
                return JsonValue.Create(Convert.ToUInt64(value, CultureInfo.InvariantCulture));
            case BigInteger big when big >= long.MinValue && big <= ulong.MaxValue:
                return big.Sign < 0 ? JsonValue.Create((long)big) : JsonValue.Create((ulong)big);
            case float or double:
                return JsonValue.Create(Convert.ToDouble(value, CultureInfo.InvariantCulture));
            case decimal number:
                return JsonValue.Create(number);
            case byte[] bytes:
                return JsonValue.Create(Convert.ToBase64String(bytes));
            case DateTime:
                throw Invalid(path, "a date, where the image holds text: ConvertFrom-Json turned a date-like string into a DateTime; read the JSON with ConvertFrom-Json -DateKind String");
            case IDictionary dictionary:
                var json = new JsonObject();
                foreach (DictionaryEntry entry in dictionary)
                {
                    string key = entry.Key.ToString() ?? "";
                    json[key] = ToNode(entry.Value, Join(path, key), depth + 1);
                }
                return json;
            case IEnumerable items:
                var list = new JsonArray();
                int index = 0;
                foreach (var item in items)
                {
                    list.Add(ToNode(item, $"{path}[{index++}]", depth + 1));
                }
                return list;
        }
        throw Invalid(path, $"{Describe(value)} cannot be part of an image");
    }

    private static string Join(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";

    private static string Describe(object? value) => value is null ? "null" : $"a {value.GetType().FullName}";

    private static CheckpointException Invalid(string path, string problem) =>
        new(CheckpointErrorKind.InvalidImageData, path.Length == 0 ? $"Not a valid image: {problem}." : $"Not a valid image: {path}: {problem}.", path,
            "Give the objects Import-CheckpointImageFile wrote, or JSON in crit's form ({\"magic\": ..., \"entries\": [...]}).");
}
