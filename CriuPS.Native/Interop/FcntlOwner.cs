using System.Runtime.InteropServices;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// fcntl(2)'s owner of a file description for SIGIO/SIGURG (F_GETOWN_EX, F_SETOWN_EX) and the signal it gets
/// (F_GETSIG, F_SETSIG). Both belong to the description, not to the descriptor.
/// </summary>
public static class FcntlOwner
{
    /// <summary>struct f_owner_ex: the kind of owner (F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP) and its id.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct OwnerEx
    {
        public int Type;
        public int Pid;
    }

    public static unsafe (int Type, int Pid) GetOwner(FileDescriptor description)
    {
        OwnerEx owner;
        if (LibC.fcntl(description.Value, LibC.F_GETOWN_EX, &owner) < 0)
        {
            throw new NativeException("fcntl(F_GETOWN_EX)", LibC.errno);
        }
        return (owner.Type, owner.Pid);
    }

    public static unsafe void SetOwner(FileDescriptor description, int type, int pid)
    {
        var owner = new OwnerEx { Type = type, Pid = pid };
        if (LibC.fcntl(description.Value, LibC.F_SETOWN_EX, &owner) < 0)
        {
            throw new NativeException("fcntl(F_SETOWN_EX)", LibC.errno);
        }
    }

    /// <summary>The signal sent to the owner when I/O is possible: 0 for SIGIO; negative values read as 0.</summary>
    public static int GetSignal(FileDescriptor description) => Math.Max(LibC.fcntl(description.Value, LibC.F_GETSIG), 0);

    public static void SetSignal(FileDescriptor description, int signal)
    {
        if (LibC.fcntl(description.Value, LibC.F_SETSIG, signal) < 0)
        {
            throw new NativeException("fcntl(F_SETSIG)", LibC.errno);
        }
    }
}
