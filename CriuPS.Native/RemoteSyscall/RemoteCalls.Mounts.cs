using CriuPS.Native.Arch;
using CriuPS.Native.Memory;

namespace CriuPS.Native.RemoteSyscall;

// Calls on the target's mount namespace: mount, unmount, pivot_root.
public readonly partial record struct RemoteCall
{
    /// <summary>mount, each string at its address (<see cref="Address.Null"/> for none).</summary>
    public static RemoteCall Mount(Address source, Address target, Address fsType, ulong flags, Address data) =>
        new(SystemCall.Mount, source.Value, target.Value, fsType.Value, flags, data.Value);

    /// <summary>
    /// mount, each string given put in <paramref name="scratch"/> in argument order (source, target, type, data), a
    /// null one passed as NULL.
    /// </summary>
    public static RemoteCall Mount(ScratchArea scratch, string? source, string target, string? fsType, ulong flags, string? data)
    {
        var sourceAt = source is null ? Memory.Address.Null : scratch.PutString(source);
        var targetAt = scratch.PutString(target);
        var fsTypeAt = fsType is null ? Memory.Address.Null : scratch.PutString(fsType);
        return Mount(sourceAt, targetAt, fsTypeAt, flags, data is null ? Memory.Address.Null : scratch.PutString(data));
    }

    public static RemoteCall Umount2(Address target, ulong flags) => new(SystemCall.Umount2, target.Value, flags);

    public static RemoteCall PivotRoot(Address newRoot, Address putOld) => new(SystemCall.PivotRoot, newRoot.Value, putOld.Value);
}
