using System.Net;
using CriuPS.Engine.Errors;
using CriuPS.Native.Interop;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// Addresses as inet_sk_entry keeps them (src_addr, dst_addr): the address bytes in network order, copied into
/// 32-bit words, one for IPv4 and four for IPv6, as CRIU does.
/// </summary>
internal static class InetImageAddress
{
    public static IEnumerable<uint> Words(IPAddress address)
    {
        var bytes = address.GetAddressBytes();
        for (int i = 0; i < bytes.Length; i += 4)
        {
            yield return BitConverter.ToUInt32(bytes, i);
        }
    }

    /// <summary>The IPv4 address behind an IPv4-mapped IPv6 one: a dual-stack socket talking to an IPv4 peer sends IPv4 packets.</summary>
    public static IPEndPoint Unmapped(IPEndPoint endpoint) =>
        endpoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endpoint.Address.MapToIPv4(), endpoint.Port) : endpoint;

    /// <summary>The saved address and port of a socket of <paramref name="family"/>.</summary>
    public static IPEndPoint Endpoint(uint family, IReadOnlyList<uint> words, uint port, string image)
    {
        int count = family == LibC.AF_INET ? 1 : 4;
        if ((family != LibC.AF_INET && family != LibC.AF_INET6) || words.Count < count || (family == LibC.AF_INET6 && words.Count != 4))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"{image}: an inet socket of family {family} has an address of {words.Count} word(s).", image);
        }
        var bytes = words.Take(count).SelectMany(BitConverter.GetBytes).ToArray();
        return new IPEndPoint(new IPAddress(bytes), (int)port);
    }
}
