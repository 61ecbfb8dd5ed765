using System.Globalization;
using System.Net;

namespace CriuPS.Native.Proc;

/// <summary>
/// One socket as /proc/thread-self/net/{raw,raw6,icmp,icmp6} lists it, in the calling thread's network namespace:
/// its state (TCP_ESTABLISHED once connected) and the address it is connected to. Raw and ping sockets connected to
/// an address with port 0 (the usual case: their port means nothing) do not answer getpeername(2), which reports a
/// peer only with a port; these tables show it.
/// </summary>
public sealed record ProcNetSocket(ulong Inode, int State, IPAddress Remote)
{
    /// <summary>The entry of socket <paramref name="inode"/> in table <paramref name="table"/> ("raw", "icmp6"...), or null.</summary>
    public static ProcNetSocket? Find(string table, ulong inode)
    {
        foreach (var line in File.ReadLines($"/proc/thread-self/net/{table}").Skip(1))
        {
            // "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ..."
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 9 && ulong.TryParse(fields[9], CultureInfo.InvariantCulture, out ulong found) && found == inode)
            {
                return new ProcNetSocket(inode, int.Parse(fields[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture), Address(fields[2]));
            }
        }
        return null;
    }

    // "0100007F:0000" or 32 hex digits: the address's 32-bit words as the kernel holds them, printed in this machine's order.
    private static IPAddress Address(string field)
    {
        string hex = field[..field.IndexOf(':', StringComparison.Ordinal)];
        var bytes = new byte[hex.Length / 2];
        for (int word = 0; word < bytes.Length / 4; word++)
        {
            uint value = uint.Parse(hex.AsSpan(word * 8, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            BitConverter.TryWriteBytes(bytes.AsSpan(word * 4, 4), value);
        }
        return new IPAddress(bytes);
    }
}
