using CriuPS.Native.Arch;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Native.RemoteSyscall;

// Calls on the target's address space: areas mapped, moved, protected, advised, locked, sealed.
public readonly partial record struct RemoteCall
{
    /// <summary>mmap of exactly <paramref name="range"/>; <paramref name="fd"/> -1 for anonymous memory.</summary>
    public static RemoteCall<Address> Mmap(AddressRange range, ulong protection, ulong flags, int fd, ulong offset) =>
        ReturningAddress(new(SystemCall.Mmap, range.Start.Value, range.Length.Value, protection, flags, (ulong)fd, offset));

    public static RemoteCall Munmap(AddressRange range) => new(SystemCall.Munmap, range.Start.Value, range.Length.Value);

    public static RemoteCall Mprotect(AddressRange range, ulong protection) => new(SystemCall.Mprotect, range.Start.Value, range.Length.Value, protection);

    public static RemoteCall Madvise(AddressRange range, int advice) => new(SystemCall.Madvise, range.Start.Value, range.Length.Value, (ulong)advice);

    /// <summary>mremap(MREMAP_MAYMOVE | MREMAP_FIXED) of <paramref name="range"/>, whole, to <paramref name="to"/>.</summary>
    public static RemoteCall<Address> MoveArea(AddressRange range, Address to) =>
        ReturningAddress(new(SystemCall.Mremap, range.Start.Value, range.Length.Value, range.Length.Value, Mman.MREMAP_MAYMOVE | Mman.MREMAP_FIXED, to.Value));

    /// <summary>mlock2, with MLOCK_ONFAULT when <paramref name="onFault"/>.</summary>
    public static RemoteCall Mlock2(AddressRange range, bool onFault) => new(SystemCall.Mlock2, range.Start.Value, range.Length.Value, onFault ? Mman.MLOCK_ONFAULT : 0);

    public static RemoteCall Mseal(AddressRange range) => new(SystemCall.Mseal, range.Start.Value, range.Length.Value, 0);

    /// <summary>brk(0): the program break, unchanged.</summary>
    public static RemoteCall<Address> ProgramBreak() => ReturningAddress(new(SystemCall.Brk, 0));

    /// <summary>shmat of the System V segment <paramref name="shmid"/> at <paramref name="at"/>.</summary>
    public static RemoteCall<Address> Shmat(int shmid, Address at, ulong flags) => ReturningAddress(new(SystemCall.Shmat, (ulong)shmid, at.Value, flags));
}
