using CriuPS.Native.Arch;
using CriuPS.Native.Memory;

namespace CriuPS.Native.RemoteSyscall;

// Calls on the target's mount namespace: mount, unmount, pivot_root.
public readonly partial record struct RemoteCall
{
    /// <summary>mount, each string at its address (<see cref="Address.Null"/> for none).</summary>
    public static RemoteCall Mount(Address source, Address target, Address fsType, ulong flags, Address data) =>
        new(SystemCall.Mount, source.Value, target.Value, fsType.Value, flags, data.Value);

    /// <summary>mount of no source with <paramref name="flags"/> on <paramref name="target"/> (a change of propagation), put in <paramref name="scratch"/>.</summary>
    public static RemoteCall Mount(ScratchArea scratch, string target, ulong flags) =>
        Mount(Memory.Address.Null, scratch.PutString(target), Memory.Address.Null, flags, Memory.Address.Null);

    public static RemoteCall Umount2(Address target, int flags) => new(SystemCall.Umount2, target.Value, (ulong)flags);

    public static RemoteCall PivotRoot(Address newRoot, Address putOld) => new(SystemCall.PivotRoot, newRoot.Value, putOld.Value);
}
