using System.Collections;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Numerics;
using System.Text.Json;
using System.Text.Json.Nodes;
using CriuPS.Engine.Images.Proto;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace CriuPS.Engine.Images.Json;

/// <summary>
/// Converts protobuf entries to and from crit's JSON form (pb2dict/dict2pb of lib/pycriu/images/pb2dict.py with
/// pretty output), driven only by the message descriptors and their (display) hints: fields that are set, in
/// field-number order, under their .proto names; enums by name; bytes as base64 lines; integers as numbers, or
/// as "0x..." (hex, which a message field passes on to everything inside it), "major:minor" (dev, odev),
/// flag names joined with " | " (flags), value names (dict) or addresses (ipadd) where the hints say so.
/// </summary>
internal static class MessageJson
{
    // Linux's dev_t as CRIU stores it in images: 20 bits of minor (the kernel's internal encoding).
    private const int KernelMinorBits = 20;

    public static JsonObject ToJson(IMessage message, bool hex = false)
    {
        var json = new JsonObject();
        foreach (FieldDescriptor field in message.Descriptor.Fields.InFieldNumberOrder())
        {
            FieldDisplay? display = Display(field);
            if (field.IsRepeated)
            {
                var values = (IList)field.Accessor.GetValue(message);
                if (values.Count == 0)
                    continue;
                json[field.Name] = display?.Ipadd == true && IpAddress(values) is string address
                    ? new JsonArray(JsonValue.Create(address))
                    : new JsonArray(values.Cast<object>().Select(v => ToJson(field, display, v, hex)).ToArray());
            }
            else if (field.Accessor.HasValue(message))
            {
                json[field.Name] = ToJson(field, display, field.Accessor.GetValue(message), hex);
            }
        }
        return json;
    }

    /// <summary>Fills <paramref name="message"/> from its JSON form; <paramref name="ignore"/> names keys that are not fields ("extra").</summary>
    public static void FromJson(JsonObject json, IMessage message, string path, string? ignore = null)
    {
        MessageDescriptor descriptor = message.Descriptor;
        foreach (var (name, node) in json)
        {
            if (name == ignore)
                continue;
            FieldDescriptor field = descriptor.FindFieldByName(name)
                ?? throw new ImageJsonException(path, $"a {descriptor.Name} has no field '{name}'");
            string fieldPath = Join(path, name);
            if (node is null)
                throw new ImageJsonException(fieldPath, "null is no value; leave the field out instead");
            FieldDisplay? display = Display(field);
            if (field.IsRepeated)
            {
                var list = (IList)field.Accessor.GetValue(message);
                if (node is not JsonArray items)
                    throw new ImageJsonException(fieldPath, $"expected a list, found {Describe(node)}");
                if (display?.Ipadd == true && items.Count > 0 && items[0] is JsonValue first && first.GetValueKind() == JsonValueKind.String)
                {
                    foreach (uint word in IpWords(first.GetValue<string>(), $"{fieldPath}[0]"))
                        list.Add(word);
                    continue;
                }
                for (int i = 0; i < items.Count; i++)
                    list.Add(FromJson(field, display, items[i], $"{fieldPath}[{i}]"));
            }
            else
            {
                field.Accessor.SetValue(message, FromJson(field, display, node, fieldPath));
            }
        }
    }

    private static FieldDisplay? Display(FieldDescriptor field) => field.GetOptions()?.GetExtension(CriupsOptsExtensions.Display);

    private static JsonNode ToJson(FieldDescriptor field, FieldDisplay? display, object value, bool hex)
    {
        hex |= display?.Hex == true;
        switch (field.FieldType)
        {
            case FieldType.Message:
                return ToJson((IMessage)value, hex);
            case FieldType.Bytes:
                var bytes = ((ByteString)value).Span;
                return JsonValue.Create(display?.Conv == "unix_name" ? CritText.ToQuotedPrintable(bytes) : CritText.ToBase64Lines(bytes));
            case FieldType.Enum:
                int number = Convert.ToInt32(value, CultureInfo.InvariantCulture);
                return field.EnumType.FindValueByNumber(number) is { } known ? JsonValue.Create(known.Name) : JsonValue.Create(number);
            case FieldType.Bool:
                return JsonValue.Create((bool)value);
            case FieldType.String:
                return JsonValue.Create((string)value);
            case FieldType.Float or FieldType.Double:
                return JsonValue.Create(Convert.ToDouble(value, CultureInfo.InvariantCulture));
        }

        BigInteger integer = ToBigInteger(value);
        if (hex)
            return JsonValue.Create(Hex(integer));
        if (display?.Dev == true)
            return JsonValue.Create(FormatDev((ulong)integer, display.Odev));
        if (display?.HasFlags == true)
        {
            // A table crit does not know is shown in hex, as crit does.
            return DisplayTables.FlagTable(display.Flags) is { } table
                ? JsonValue.Create(DisplayTables.FormatFlags((ulong)integer, table))
                : JsonValue.Create(Hex(integer));
        }
        if (display?.HasDict == true && integer.Sign >= 0 && DisplayTables.DictTable(display.Dict, field.Name) is { } names
            && names.TryGetValue((ulong)integer, out string? name))
            return JsonValue.Create(name);
        return value switch
        {
            int i => JsonValue.Create(i),
            uint u => JsonValue.Create(u),
            long l => JsonValue.Create(l),
            _ => JsonValue.Create((ulong)value),
        };
    }

    private static object FromJson(FieldDescriptor field, FieldDisplay? display, JsonNode? node, string path)
    {
        if (node is null)
            throw new ImageJsonException(path, "null is no value");
        switch (field.FieldType)
        {
            case FieldType.Message:
                if (node is not JsonObject json)
                    throw new ImageJsonException(path, $"expected an object ({field.MessageType.Name}), found {Describe(node)}");
                IMessage message = field.MessageType.Parser.ParseFrom(ByteString.Empty);
                FromJson(json, message, path);
                return message;
            case FieldType.Bytes:
                string text = Text(node, path, "base64 text");
                try
                {
                    return ByteString.CopyFrom(display?.Conv == "unix_name" ? CritText.FromQuotedPrintable(text) : CritText.FromBase64(text));
                }
                catch (FormatException)
                {
                    throw new ImageJsonException(path, "not valid base64");
                }
            case FieldType.Enum:
                EnumValueDescriptor? value = node.GetValueKind() == JsonValueKind.String
                    ? field.EnumType.FindValueByName(node.GetValue<string>())
                    : field.EnumType.FindValueByNumber((int)Fitting(Integer(node, path), int.MinValue, int.MaxValue, field, path));
                if (value is null)
                    throw new ImageJsonException(path, $"{node.ToJsonString()} is no {field.EnumType.Name} (one of {string.Join(", ", field.EnumType.Values.Select(v => v.Name))})");
                return Enum.ToObject(field.EnumType.ClrType, value.Number);
            case FieldType.Bool:
                return node.GetValueKind() switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw new ImageJsonException(path, $"expected true or false, found {Describe(node)}"),
                };
            case FieldType.String:
                return Text(node, path, "a string");
            case FieldType.Float:
                return (float)Real(node, path);
            case FieldType.Double:
                return Real(node, path);
        }

        var (min, max) = Range(field.FieldType);
        BigInteger integer = Fitting(node.GetValueKind() == JsonValueKind.String
            ? ParseInteger(field, display, node.GetValue<string>(), path)
            : Integer(node, path), min, max, field, path);
        return field.FieldType switch
        {
            FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => (object)(int)integer,
            FieldType.UInt32 or FieldType.Fixed32 => (uint)integer,
            FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => (long)integer,
            _ => (ulong)integer,
        };
    }

    // The order of dict2pb: a device number, then flag names, then value names, then any integer text.
    private static BigInteger ParseInteger(FieldDescriptor field, FieldDisplay? display, string text, string path)
    {
        if (display?.Dev == true && text.Contains(':', StringComparison.Ordinal))
            return ParseDev(text, display.Odev, path);
        if (display?.HasFlags == true && DisplayTables.FlagTable(display.Flags) is { } table)
        {
            BigInteger sum = 0;
            if (text.Length == 0)
                return sum;
            foreach (string part in text.Split('|').Select(p => p.Trim()))
            {
                var named = table.Where(f => f.Name == part).Select(f => (ulong?)f.Bit).FirstOrDefault();
                sum += named ?? (CritText.TryParseInteger(part, out var number) ? number
                    : throw new ImageJsonException(path, $"'{part}' is no {display.Flags} flag (one of {string.Join(", ", table.Select(f => f.Name))}, or a number)"));
            }
            return sum;
        }
        if (display?.HasDict == true && DisplayTables.DictTable(display.Dict, field.Name) is { } names)
        {
            foreach (var (number, name) in names)
                if (name == text)
                    return number;
        }
        return CritText.TryParseInteger(text, out var value) ? value
            : throw new ImageJsonException(path, $"'{text}' is not a number");
    }

    private static BigInteger Fitting(BigInteger integer, BigInteger min, BigInteger max, FieldDescriptor field, string path) =>
        integer >= min && integer <= max ? integer : throw new ImageJsonException(path, $"{integer} does not fit a {field.FieldType} field");

    private static BigInteger Integer(JsonNode node, string path)
    {
        if (node.GetValueKind() != JsonValueKind.Number)
            throw new ImageJsonException(path, $"expected a number, found {Describe(node)}");
        string literal = node.ToJsonString();
        if (BigInteger.TryParse(literal, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
            return integer;
        // 1.0 or 1e3 from tools that write every number as a float: fine when it is a whole number.
        if (decimal.TryParse(literal, NumberStyles.Float, CultureInfo.InvariantCulture, out decimal real) && real == decimal.Truncate(real))
            return new BigInteger(real);
        throw new ImageJsonException(path, $"{literal} is not a whole number");
    }

    private static double Real(JsonNode node, string path) =>
        node.GetValueKind() == JsonValueKind.Number
            ? double.Parse(node.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture)
            : throw new ImageJsonException(path, $"expected a number, found {Describe(node)}");

    private static string Text(JsonNode node, string path, string what) =>
        node.GetValueKind() == JsonValueKind.String ? node.GetValue<string>() : throw new ImageJsonException(path, $"expected {what}, found {Describe(node)}");

    private static (BigInteger Min, BigInteger Max) Range(FieldType type) => type switch
    {
        FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => (int.MinValue, int.MaxValue),
        FieldType.UInt32 or FieldType.Fixed32 => (0, uint.MaxValue),
        FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => (long.MinValue, long.MaxValue),
        _ => (0, ulong.MaxValue),
    };

    private static BigInteger ToBigInteger(object value) => value switch
    {
        int i => i,
        uint u => u,
        long l => l,
        ulong u => u,
        _ => throw new ArgumentException($"not an integer: {value.GetType()}", nameof(value)),
    };

    // Python's "0x%x": lower case, no leading zeros, a minus sign before the prefix.
    private static string Hex(BigInteger value)
    {
        string digits = BigInteger.Abs(value).ToString("x", CultureInfo.InvariantCulture).TrimStart('0');
        return (value.Sign < 0 ? "-0x" : "0x") + (digits.Length == 0 ? "0" : digits);
    }

    // odev is the old encoding glibc's major()/minor() read: 12+20 bits of major, 8+24 of minor.
    private static string FormatDev(ulong dev, bool old) => old
        ? $"{((dev >> 32) & 0xfffff000) | ((dev >> 8) & 0xfff)}:{((dev >> 12) & 0xffffff00) | (dev & 0xff)}"
        : $"{dev >> KernelMinorBits}:{dev & ((1UL << KernelMinorBits) - 1)}";

    private static BigInteger ParseDev(string text, bool old, string path)
    {
        string[] parts = text.Split(':');
        if (parts.Length != 2 || !ulong.TryParse(parts[0], CultureInfo.InvariantCulture, out ulong major)
            || !ulong.TryParse(parts[1], CultureInfo.InvariantCulture, out ulong minor))
            throw new ImageJsonException(path, $"'{text}' is not a device number (major:minor)");
        return old
            ? ((major & 0xfffff000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffffff00) << 12) | (minor & 0xff)
            : ((BigInteger)major << KernelMinorBits) | minor;
    }

    // One word is an IPv4 address, four an IPv6 one, each word holding the address bytes in memory order
    // (network order read as a little-endian u32). Other lengths are no address: they stay numbers.
    private static string? IpAddress(IList words)
    {
        if (words.Count is not (1 or 4))
            return null;
        byte[] bytes = words.Cast<uint>().SelectMany(BitConverter.GetBytes).ToArray();
        return new IPAddress(bytes).ToString();
    }

    private static IEnumerable<uint> IpWords(string text, string path)
    {
        if (!IPAddress.TryParse(text, out IPAddress? address) || address.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
            throw new ImageJsonException(path, $"'{text}' is not an IPv4 or IPv6 address");
        byte[] bytes = address.GetAddressBytes();
        for (int i = 0; i < bytes.Length; i += sizeof(uint))
            yield return BitConverter.ToUInt32(bytes, i);
    }

    internal static string Join(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";

    internal static string Describe(JsonNode? node) => node switch
    {
        null => "null",
        JsonObject => "an object",
        JsonArray => "a list",
        _ => node.GetValueKind() switch
        {
            JsonValueKind.String => $"the string \"{node.GetValue<string>()}\"",
            JsonValueKind.Number => $"the number {node.ToJsonString()}",
            _ => node.ToJsonString(),
        },
    };
}
