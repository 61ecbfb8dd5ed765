using System.Runtime.InteropServices;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// The owner of a file description for SIGIO/SIGURG (fown_entry: F_SETOWN_EX and F_SETSIG). Both belong to the
/// description, so the engine reads and sets them on its own copy of it.
/// </summary>
internal static class FileOwner
{
    private const int FGetSig = 11, FSetSig = 10, FGetOwnEx = 16, FSetOwnEx = 15;

    [StructLayout(LayoutKind.Sequential)]
    private struct OwnerEx
    {
        public int Type;
        public int Pid;
    }

    /// <summary>The owner of a description we hold a copy of; <paramref name="uid"/>/<paramref name="euid"/> are the process's.</summary>
    public static unsafe FownEntry Read(FileDescriptor description, uint uid, uint euid)
    {
        OwnerEx owner;
        if (LibC.fcntl(description.Value, FGetOwnEx, &owner) < 0)
        {
            throw new NativeException("fcntl(F_GETOWN_EX)", LibC.errno);
        }
        int signal = LibC.fcntl(description.Value, FGetSig);
        return new FownEntry { Uid = uid, Euid = euid, Signum = (uint)Math.Max(signal, 0), PidType = (uint)owner.Type, Pid = (uint)owner.Pid };
    }

    /// <summary>An entry for a file that has no owner.</summary>
    public static FownEntry None => new() { Uid = 0, Euid = 0, Signum = 0, PidType = 0, Pid = 0 };

    public static unsafe void Restore(FileDescriptor description, FownEntry? fown)
    {
        if (fown is null || (fown.Pid == 0 && fown.Signum == 0))
        {
            return;
        }
        if (fown.Signum != 0 && LibC.fcntl(description.Value, FSetSig, (int)fown.Signum) < 0)
        {
            throw new NativeException("fcntl(F_SETSIG)", LibC.errno);
        }
        if (fown.Pid != 0)
        {
            var owner = new OwnerEx { Type = (int)fown.PidType, Pid = (int)fown.Pid };
            if (LibC.fcntl(description.Value, FSetOwnEx, &owner) < 0)
            {
                throw new NativeException("fcntl(F_SETOWN_EX)", LibC.errno);
            }
        }
    }
}
