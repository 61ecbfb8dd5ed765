using System.Runtime.InteropServices;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>The first reply to a netlink request: its type, and an errno (of the call that failed, or of NLMSG_ERROR) or 0.</summary>
public readonly record struct NetlinkAnswer(int ReplyType, int Errno, string? FailedCall)
{
    public static NetlinkAnswer Failed(string call, int errno) => new(-1, errno, call);
}
