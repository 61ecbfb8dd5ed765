using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;

namespace CriuPS.Native.RemoteSyscall;

/// <summary>
/// A session of injected system calls in one process: a borrowed `syscall` maps our scratch area, our own
/// `syscall; int3` runs every further call, and the end unmaps the area from a syscall-exit stop where the
/// thread's final registers are put in place before it could return into the vanished page.
/// </summary>
public sealed class Injection
{
    private Injection(RemoteSyscaller caller, ScratchArea scratch)
    {
        Caller = caller;
        Scratch = scratch;
    }

    public RemoteSyscaller Caller { get; }

    public ScratchArea Scratch { get; }

    public ProcessMemory Memory => Scratch.Memory;

    /// <summary>Maps a scratch area of <paramref name="size"/> in a stopped process, at <paramref name="at"/> if given.</summary>
    public static Injection Begin(Tracee thread, ProcessMemory memory, IReadOnlyList<VmaInfo> vmas, ByteCount size, Address? at = null)
    {
        var gadget = SyscallGadget.Find(vmas, memory);
        var caller = new RemoteSyscaller(thread, gadget, followedByTrap: false);
        ulong flags = Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS | (at is null ? 0 : Mman.MAP_FIXED_NOREPLACE);
        long mapped = caller.Checked(
            "mmap of the injection area", SyscallNumber.Mmap,
            at?.Value ?? 0, size.Value, Mman.PROT_READ | Mman.PROT_WRITE | Mman.PROT_EXEC, flags, unchecked((ulong)-1), 0);
        if (at is not null && (ulong)mapped != at.Value.Value)
        {
            caller.Call(SyscallNumber.Munmap, (ulong)mapped, size.Value);
            caller.RestoreOriginalRegisters();
            throw new InvalidOperationException($"the kernel placed the injection area at 0x{mapped:x} instead of {at}");
        }
        var scratch = new ScratchArea(new AddressRange(new Address((ulong)mapped), new Address((ulong)mapped) + size), memory);
        scratch.InstallCode();
        caller.UseOwnCode(scratch.CodeAddress);
        return new Injection(caller, scratch);
    }

    /// <summary>Continues in a process that inherited the scratch area (a child forked from an injected process).</summary>
    public static Injection Adopt(Tracee thread, ProcessMemory memory, AddressRange scratchRange)
    {
        var scratch = new ScratchArea(scratchRange, memory);
        return new Injection(new RemoteSyscaller(thread, scratch.CodeAddress, followedByTrap: true), scratch);
    }

    /// <summary>A caller for another stopped thread of the same process (they share the scratch area).</summary>
    public RemoteSyscaller CallerFor(Tracee thread) => new(thread, Scratch.CodeAddress, followedByTrap: true);

    /// <summary>Unmaps the scratch area and leaves the thread with <paramref name="finalRegs"/>, still stopped.</summary>
    public void End(UserRegs finalRegs)
    {
        long result = Caller.CallAndStopAtExit(SyscallNumber.Munmap, Scratch.Range.Start.Value, Scratch.Range.Length.Value);
        if (result < 0)
        {
            throw new NativeException($"munmap of the injection area in {Caller.Thread.ProcessId}", (int)-result);
        }
        finalRegs.OrigRax = ulong.MaxValue;
        Caller.Thread.SetRegs(finalRegs);
    }
}
