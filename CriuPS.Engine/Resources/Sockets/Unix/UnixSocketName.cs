using System.Text;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// Unix socket names as the kernel keeps them (sun_path bytes: a path with its NUL, an abstract name after a
/// leading NUL, or nothing), and how errors and listings show them.
/// </summary>
internal static class UnixSocketName
{
    public static bool IsPath(ReadOnlySpan<byte> name) => name.Length > 0 && name[0] != 0;

    public static bool IsAbstract(ReadOnlySpan<byte> name) => name.Length > 0 && name[0] == 0;

    /// <summary>A path name as text, without its NUL.</summary>
    public static string Path(ReadOnlySpan<byte> name)
    {
        int end = name.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? name : name[..end]);
    }

    /// <summary>The name as ss(8) shows it: a path, "@name" for an abstract one (NULs inside as '@'), or "(unnamed)".</summary>
    public static string Display(ReadOnlySpan<byte> name) =>
        name.Length == 0 ? "(unnamed)"
        : IsAbstract(name) ? "@" + Encoding.UTF8.GetString(name[1..]).Replace('\0', '@')
        : Path(name);

    public static string TypeName(uint type) =>
        type == LibC.SOCK_STREAM ? "stream"
        : type == LibC.SOCK_DGRAM ? "datagram"
        : type == LibC.SOCK_SEQPACKET ? "seqpacket"
        : $"type-{type}";

    /// <summary>"unix stream socket /run/app.sock", "unix datagram socket" (unnamed): how messages name a socket.</summary>
    public static string Describe(uint type, ReadOnlySpan<byte> name) =>
        $"unix {TypeName(type)} socket" + (name.Length > 0 ? " " + Display(name) : "");

    /// <summary>How Get-CheckpointImage lists a saved socket.</summary>
    public static string Describe(UnixSkEntry entry) => Describe(entry.Type, entry.Name.Span) + entry.State switch
    {
        UnixDiagSocket.StateListen => " (listening)",
        _ when entry.Peer != 0 => " (connected)",
        _ => "",
    };
}

