using System.Globalization;

namespace CriuPS.Native.Proc;

internal static class AnonInodeFdInfo
{
    public static ulong Hex(string? text, string key) =>
        ulong.Parse(text ?? throw Missing(key), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    public static ulong Hex(IReadOnlyDictionary<string, string> fields, string key) =>
        Hex(fields.GetValueOrDefault(key), key);

    public static InvalidDataException Missing(string key) => new($"fdinfo has no '{key}' field");
}
