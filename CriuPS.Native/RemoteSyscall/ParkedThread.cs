using CriuPS.Native.Arch;
using CriuPS.Native.Arch.X86_64;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;

namespace CriuPS.Native.RemoteSyscall;

/// <summary>
/// A stopped thread of a process we must not harm, parked so that it gets back to itself whatever happens to us:
/// its own state (registers set up to resume, signal mask, XSAVE state) is in a <see cref="SignalFrame"/> on its
/// stack, and its registers point at the process's signal restorer with the stack pointer on that frame. If we die,
/// the kernel detaches the thread, which executes rt_sigreturn from the frame and carries on as if never stopped.
/// While we live, every injected call enters the kernel through that same restorer and returns to it
/// (<see cref="RemoteSyscaller"/>), so the thread is never anywhere it could not leave on its own.
/// </summary>
public sealed class ParkedThread
{
    private ParkedThread(Tracee thread, UserRegs original, ulong signalMask, byte[] xstate, SignalFrame frame, Address restorer, int syscallOffset)
    {
        Thread = thread;
        OriginalRegs = original;
        ResumeRegs = SyscallRestart.ForResume(original, restartBlockKept: true);
        SignalMask = signalMask;
        XState = xstate;
        Frame = frame;
        Restorer = restorer;
        ReturnPoint = restorer;
        RestorerSyscall = restorer + new ByteCount((ulong)syscallOffset);
    }

    public Tracee Thread { get; }

    /// <summary>The registers the thread had when it stopped.</summary>
    public UserRegs OriginalRegs { get; }

    /// <summary>The registers it resumes with: an interrupted system call set up to run again.</summary>
    public UserRegs ResumeRegs { get; }

    /// <summary>The signal mask it had when it stopped.</summary>
    public ulong SignalMask { get; }

    /// <summary>Its XSAVE state (NT_X86_XSTATE) when it stopped.</summary>
    public byte[] XState { get; }

    public SignalFrame Frame { get; }

    /// <summary>The process's `mov $15, %rax; syscall`.</summary>
    public Address Restorer { get; }

    /// <summary>The `syscall` instruction of the restorer.</summary>
    public Address RestorerSyscall { get; }

    /// <summary>
    /// Where the thread goes on from when it is let go: the restorer, or code of ours that undoes something first and
    /// then jumps there (<see cref="DoOnTheWayBack"/>).
    /// </summary>
    public Address ReturnPoint { get; private set; }

    /// <summary>The first system call a thread let go makes: the rt_sigreturn, or the first of <see cref="DoOnTheWayBack"/>.</summary>
    public SystemCall FirstSyscallOnTheWayBack { get; private set; } = SystemCall.RtSigreturn;

    /// <summary>The registers of a parked thread: at its return point, its stack pointer on the frame.</summary>
    public UserRegs Parked
    {
        get
        {
            var arch = IArchitecture.Current;
            return arch.OutsideSyscall(arch.WithStackPointer(arch.WithInstructionPointer(ResumeRegs, ReturnPoint.Value), Frame.SigreturnStack.Value));
        }
    }

    /// <summary>
    /// Parks a thread in its first stop (an interrupt stop, with its own registers): writes the frame below its stack
    /// pointer and points it at <paramref name="restorer"/>. Null, with nothing changed, when that stack memory is not
    /// a writable area of <paramref name="vmas"/>.
    /// </summary>
    public static ParkedThread? TryPark(Tracee thread, ProcessMemory memory, IReadOnlyList<VmaInfo> vmas, Address restorer, int syscallOffset)
    {
        var original = thread.GetRegs();
        ulong mask = Interop.Ptrace.GetSigMask(thread.Tid);
        var xstate = thread.GetXState();
        var frame = SignalFrame.For(SyscallRestart.ForResume(original, restartBlockKept: true), mask, xstate, XStateLayout.Current.SupportedFeatures);
        if (!vmas.Any(v => v.Writable && !v.Shared && v.Range.Start <= frame.Range.Start && frame.Range.End <= v.Range.End))
        {
            return null;
        }
        memory.Write(frame.Start, frame.Bytes);
        var parked = new ParkedThread(thread, original, mask, xstate, frame, restorer, syscallOffset);
        thread.SetRegs(parked.Parked);
        return parked;
    }

    /// <summary>
    /// Makes the thread, when it is let go, first make <paramref name="calls"/> (what undoes a change we made to the
    /// process that the frame does not hold, such as a socket in TCP repair mode), then return to itself: straight-line
    /// code kept in <paramref name="scratch"/> for the rest of the session. The thread must be in a stop outside a
    /// system call.
    /// </summary>
    public void DoOnTheWayBack(ScratchArea scratch, IReadOnlyList<RemoteCall> calls)
    {
        if (calls.Count == 0)
        {
            ReturnStraightBack();
            return;
        }
        var code = IArchitecture.Current.EncodeCallsThenReturn(calls.Select(c => (c.Number, c.Arguments)).ToList(), Frame.SigreturnStack.Value, Restorer.Value);
        ReturnPoint = scratch.Keep(code);
        FirstSyscallOnTheWayBack = calls[0].Number;
        Thread.SetRegs(Parked);
    }

    /// <summary>Makes the restorer the return point again (our code is about to go away). In a stop outside a system call.</summary>
    public void ReturnStraightBack()
    {
        ReturnPoint = Restorer;
        FirstSyscallOnTheWayBack = SystemCall.RtSigreturn;
        Thread.SetRegs(Parked);
    }

    public override string ToString() => Thread.ToString();
}
