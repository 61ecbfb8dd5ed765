using System.Net;

namespace CriuPS.Native.Interop;

/// <summary>
/// What the kernel tells of one IPv4 or IPv6 TCP or UDP socket through INET_DIAG (linux/inet_diag.h). Only sockets
/// in the kernel's lookup tables are listed: listening, connected and bound UDP sockets, not a TCP socket that is
/// only bound nor an unbound one.
/// </summary>
/// <param name="Inode">The socket's inode (socket:[N] in /proc/PID/fd).</param>
/// <param name="Family">AF_INET or AF_INET6.</param>
/// <param name="Protocol">IPPROTO_TCP or IPPROTO_UDP.</param>
/// <param name="State">The TCP state (TCP_ESTABLISHED 1... TCP_LISTEN 10); a UDP socket shows 1 when connected, 7 otherwise.</param>
/// <param name="ReceiveQueue">TCP: bytes to read; for a listener, the connections waiting to be accepted.</param>
/// <param name="SendQueue">TCP: bytes not yet acknowledged; for a listener, its backlog.</param>
/// <param name="Shutdown">RCV_SHUTDOWN (1) and SEND_SHUTDOWN (2) bits.</param>
public sealed record InetDiagSocket(uint Inode, int Family, int Protocol, int State, IPEndPoint Local, IPEndPoint Remote,
    uint ReceiveQueue, uint SendQueue, int Shutdown);
