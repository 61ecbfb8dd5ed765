namespace CriuPS.Engine.Tests.Sockets;

/// <summary>sock_diag answers built by hand, as the kernel lays them out (little-endian, attributes 4-aligned).</summary>
internal static class DiagMessages
{
    /// <summary>A family's message: its fixed <paramref name="header"/>, then each attribute (length, kind, value, padding).</summary>
    public static byte[] Build(IEnumerable<byte> header, (ushort Kind, byte[] Value)[] attributes)
    {
        var body = new List<byte>(header);
        foreach (var (kind, value) in attributes)
        {
            body.AddRange(BitConverter.GetBytes((ushort)(4 + value.Length)));
            body.AddRange(BitConverter.GetBytes(kind));
            body.AddRange(value);
            while (body.Count % 4 != 0)
            {
                body.Add(0);
            }
        }
        return body.ToArray();
    }

    /// <summary>32-bit words, little-endian.</summary>
    public static byte[] Words(params uint[] words) => words.SelectMany(BitConverter.GetBytes).ToArray();
}
