using CriuPS.Native.Arch;
using CriuPS.Native.Arch.X86_64;
using CriuPS.Native.Diagnostics;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;

namespace CriuPS.Native.RemoteSyscall;

/// <summary>
/// A session of injected system calls in one process. In a process of ours (a restore), a borrowed `syscall` maps our
/// scratch area, our own `syscall; int3` runs every further call, and the end unmaps the area from a syscall-exit stop
/// where the thread's final registers are put in place before it could return into the vanished page. In a process we
/// must not harm (a dump), the leader is a <see cref="ParkedThread"/> and every call goes through its signal
/// restorer (<see cref="BeginParked"/>): the scratch area then only holds data and our batches of calls.
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
            "mmap of the injection area", SystemCall.Mmap,
            at?.Value ?? 0, size.Value, Mman.PROT_READ | Mman.PROT_WRITE | Mman.PROT_EXEC, flags, unchecked((ulong)-1), 0);
        if (at is not null && (ulong)mapped != at.Value.Value)
        {
            caller.Call(SystemCall.Munmap, (ulong)mapped, size.Value);
            caller.RestoreOriginalRegisters();
            throw new InvalidOperationException($"the kernel placed the injection area at 0x{mapped:x} instead of {at}");
        }
        var scratch = new ScratchArea(new AddressRange(new Address((ulong)mapped), new Address((ulong)mapped) + size), memory);
        scratch.InstallCode();
        caller.UseOwnCode(scratch.CodeAddress);
        return new Injection(caller, scratch);
    }

    /// <summary>
    /// Maps a scratch area of <paramref name="size"/> in a process whose threads are parked; the area starts with
    /// <see cref="ScratchArea.Signature"/>, so that one left behind by a session that died is recognised.
    /// </summary>
    public static Injection BeginParked(ParkedThread leader, ProcessMemory memory, ByteCount size, int? stopSignal, ulong? heldWhileRunning)
    {
        var caller = new RemoteSyscaller(leader, stopSignal, heldWhileRunning);
        // MAP_NORESERVE marks it (VmFlags "nr"), so that one left by a death before its signature is written is known too.
        long mapped = caller.Checked(
            "mmap of the injection area", SystemCall.Mmap,
            0, size.Value, Mman.PROT_READ | Mman.PROT_WRITE | Mman.PROT_EXEC, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS | Mman.MAP_NORESERVE, unchecked((ulong)-1), 0);
        var scratch = new ScratchArea(new AddressRange(new Address((ulong)mapped), new Address((ulong)mapped) + size), memory);
        scratch.InstallSignature();
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

    /// <summary>A caller for another parked thread of the same process.</summary>
    public RemoteSyscaller CallerFor(ParkedThread thread, int? stopSignal, ulong? heldWhileRunning) => new(thread, stopSignal, heldWhileRunning, Caller.IsGuarded ? Caller.ProcessLevels : null);

    /// <summary>
    /// Unmaps the injection areas that earlier sessions left in the process when they died before they could remove
    /// them (every session removes its own), and returns them: private anonymous areas of this one's size, flags and
    /// protection that start with <see cref="ScratchArea.Signature"/>, or with nothing at all when the session died
    /// right after it mapped one. Only such areas are read: reading untouched memory would give the process a page.
    /// </summary>
    public List<VmaInfo> RemoveLeftovers(IReadOnlyList<VmaInfo> vmas)
    {
        var leftovers = vmas.Where(v => v.IsAnonymous && !v.IsSpecial && v.Readable && v.Writable && v.Executable && !v.Shared
                && v.HasFlag("nr") && v.Range.Length == Scratch.Range.Length && !v.Range.Overlaps(Scratch.Range)
                && Memory.Read(v.Start, ScratchArea.Signature.Length) is var start
                && (start.AsSpan().SequenceEqual(ScratchArea.Signature) || start.AsSpan().IndexOfAnyExcept((byte)0) < 0))
            .ToList();
        foreach (var area in leftovers)
        {
            Caller.Checked($"munmap of the injection area {area.Range} left by a session that died", SystemCall.Munmap, area.Start.Value, area.Range.Length.Value);
        }
        return leftovers;
    }

    /// <summary>
    /// Makes a descriptor in the process with an injected call (a userfaultfd, say), hands its number to
    /// <paramref name="take"/> (which takes a copy with pidfd_getfd) and returns what it returns, and closes it in the process. In a parked
    /// thread the close is code the call returns into, on the thread's way back to itself: the process never keeps
    /// the descriptor, even if we die between the two.
    /// </summary>
    public T CallAndClose<T>(string what, RemoteCall<int> call, Func<int, T> take)
    {
        if (!Caller.IsGuarded)
        {
            int made = Caller.Checked(what, call);
            try
            {
                return take((int)made);
            }
            finally
            {
                Caller.Checked($"close after {what}", RemoteCall.Close(made));
            }
        }
        // The close of the call's result, then the end of our code.
        var close = IArchitecture.Current.EncodeCloseOfResult();
        byte[] code = [.. close, .. Caller.EncodeEnd()];
        var mark = Scratch.Mark();
        var address = Scratch.Put(code);
        long fd = Caller.CallReturningTo(address, call);
        try
        {
            if (fd < 0 && fd > -4096)
            {
                throw new NativeException($"{what} in {Caller.Thread.ProcessId}", (int)-fd);
            }
            DeathPoint.Reach(DeathPoint.Track);
            return take((int)fd);
        }
        finally
        {
            Caller.ContinueCode(address + new ByteCount((ulong)close.Length), 1);
            Scratch.Rewind(mark);
        }
    }

    /// <summary>
    /// Unmaps the scratch area and leaves the thread with <paramref name="finalRegs"/>, still stopped; a parked thread
    /// returns from the munmap to its restorer, outside the area, and stays parked there.
    /// </summary>
    public void End(UserRegs finalRegs)
    {
        long result = Caller.CallAndStopAtExit(SystemCall.Munmap, Scratch.Range.Start.Value, Scratch.Range.Length.Value);
        if (result < 0)
        {
            throw new NativeException($"munmap of the injection area in {Caller.Thread.ProcessId}", (int)-result);
        }
        if (Caller.IsGuarded)
        {
            return; // parked at its restorer: it gets its own registers back when it is let go (ParkedThread)
        }
        Caller.Thread.SetRegs(IArchitecture.Current.OutsideSyscall(finalRegs));
    }
}
