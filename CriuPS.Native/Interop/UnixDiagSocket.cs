namespace CriuPS.Native.Interop;

/// <summary>
/// What the kernel tells of one AF_UNIX socket through UNIX_DIAG (linux/unix_diag.h): what /proc does not show.
/// </summary>
/// <param name="Inode">The socket's inode (socket:[N] in /proc/PID/fd).</param>
/// <param name="Type">SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET.</param>
/// <param name="State">TCP_ESTABLISHED (1), TCP_CLOSE (7) or TCP_LISTEN (10).</param>
/// <param name="Name">The bound name (a path ends with its NUL, an abstract name starts with a NUL); empty when unnamed.
/// An accepted connection carries its listener's name.</param>
/// <param name="BoundDevice">Device of the file a path name is bound to (UNIX_DIAG_VFS).</param>
/// <param name="BoundInode">Inode of that file.</param>
/// <param name="Peer">Inode of the socket it is connected to; 0 when none, or when that end is gone or not yet accepted.</param>
/// <param name="PendingConnections">For a listener, the inodes of the clients whose connections wait to be accepted,
/// in the order accept(2) takes them (0 for a client that has closed).</param>
/// <param name="ReceiveQueue">Bytes waiting to be read (stream and seqpacket: all; datagram: the first message);
/// for a listener, the connections waiting.</param>
/// <param name="SendQueue">Memory of messages sent and not yet read by the other end; for a listener, its backlog.</param>
/// <param name="Shutdown">RCV_SHUTDOWN (1) and SEND_SHUTDOWN (2) bits.</param>
public sealed record UnixDiagSocket(
    uint Inode, int Type, int State, byte[] Name, uint BoundDevice, uint BoundInode, uint Peer,
    uint[] PendingConnections, uint ReceiveQueue, uint SendQueue, int Shutdown)
{
    public const int StateEstablished = 1, StateClose = 7, StateListen = 10;
    public const int ShutdownRead = 1, ShutdownWrite = 2, ShutdownBoth = 3;

    public bool IsListening => State == StateListen;
}
