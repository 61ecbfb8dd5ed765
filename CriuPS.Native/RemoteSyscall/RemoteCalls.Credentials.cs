using CriuPS.Native.Arch;
using CriuPS.Native.Memory;

namespace CriuPS.Native.RemoteSyscall;

// Calls on the target's credentials and filesystem context: ids, groups, capabilities, root, working directory, umask.
public readonly partial record struct RemoteCall
{
    /// <summary>setgroups of <paramref name="groups"/>, put in <paramref name="scratch"/>.</summary>
    public static RemoteCall Setgroups(ScratchArea scratch, uint[] groups) => new(SystemCall.Setgroups, (ulong)groups.Length, scratch.PutArray<uint>(groups).Value);

    public static RemoteCall Setresuid(uint real, uint effective, uint saved) => new(SystemCall.Setresuid, real, effective, saved);

    public static RemoteCall Setresgid(uint real, uint effective, uint saved) => new(SystemCall.Setresgid, real, effective, saved);

    public static RemoteCall Setfsuid(uint uid) => new(SystemCall.Setfsuid, uid);

    public static RemoteCall Setfsgid(uint gid) => new(SystemCall.Setfsgid, gid);

    /// <summary>capset with the header and data at <paramref name="header"/> and <paramref name="data"/>.</summary>
    public static RemoteCall Capset(Address header, Address data) => new(SystemCall.Capset, header.Value, data.Value);

    public static RemoteCall Umask(uint mask) => new(SystemCall.Umask, mask);

    /// <summary>chdir to <paramref name="path"/>, put in <paramref name="scratch"/>.</summary>
    public static RemoteCall Chdir(ScratchArea scratch, string path) => new(SystemCall.Chdir, scratch.PutString(path).Value);

    /// <summary>chroot to <paramref name="path"/>, put in <paramref name="scratch"/>.</summary>
    public static RemoteCall Chroot(ScratchArea scratch, string path) => new(SystemCall.Chroot, scratch.PutString(path).Value);
}
