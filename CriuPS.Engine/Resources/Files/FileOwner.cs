using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// The owner of a file description for SIGIO/SIGURG (fown_entry: F_SETOWN_EX and F_SETSIG). Both belong to the
/// description, so the engine reads and sets them on its own copy of it.
/// </summary>
internal static class FileOwner
{
    /// <summary>The owner of a description we hold a copy of; <paramref name="uid"/>/<paramref name="euid"/> are the process's.</summary>
    public static FownEntry Read(FileDescriptor description, uint uid, uint euid)
    {
        var (type, pid) = FcntlOwner.GetOwner(description);
        int signal = FcntlOwner.GetSignal(description);
        return new FownEntry { Uid = uid, Euid = euid, Signum = (uint)signal, PidType = (uint)type, Pid = (uint)pid };
    }

    /// <summary>An entry for a file that has no owner.</summary>
    public static FownEntry None => new() { Uid = 0, Euid = 0, Signum = 0, PidType = 0, Pid = 0 };

    public static void Restore(FileDescriptor description, FownEntry? fown)
    {
        if (fown is null || (fown.Pid == 0 && fown.Signum == 0))
        {
            return;
        }
        if (fown.Signum != 0)
        {
            FcntlOwner.SetSignal(description, (int)fown.Signum);
        }
        if (fown.Pid != 0)
        {
            FcntlOwner.SetOwner(description, (int)fown.PidType, (int)fown.Pid);
        }
    }
}
