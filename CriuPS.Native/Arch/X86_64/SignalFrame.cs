using System.Buffers.Binary;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Native.Arch.X86_64;

/// <summary>
/// An x86-64 rt_sigreturn frame that holds a thread's own state: its registers as it would resume them, its signal
/// mask and its full XSAVE state. A thread that executes rt_sigreturn with its stack pointer on this frame is back
/// exactly where it was, in one system call that the kernel does on its own: this is how a thread we are working
/// in gets back to itself if we die (the kernel detaches it, and it runs into the frame).
/// The frame goes below the thread's red zone, in stack memory the thread does not use, where the kernel itself
/// would build a signal frame.
/// </summary>
public sealed class SignalFrame
{
    // struct rt_sigframe: pretcode, then struct ucontext (flags, link, stack_t, sigcontext, sigmask), then siginfo.
    private const int UcontextOffset = 8;
    private const int UcFlagsOffset = UcontextOffset, UcStackFlagsOffset = UcontextOffset + 16 + 8;
    private const int SigcontextOffset = UcontextOffset + 40, SigmaskOffset = SigcontextOffset + 256;
    private const int FrameSize = 8 + 304 + 128;
    private const int RedZone = 128;

    // uc_flags as the kernel sets them: the frame has XSAVE state, and the saved ss is to be restored as it is.
    private const ulong UcFpXstate = 1, UcSigcontextSs = 2, UcStrictRestoreSs = 4;

    // An alternate-stack mode the kernel refuses: rt_sigreturn then leaves the thread's alternate stack as it is
    // (it ignores every error of that step but a fault), so the frame needs no copy of it.
    private const uint KeepAlternateStack = 3;

    // The software-reserved bytes of the legacy FXSAVE area and the markers of an XSAVE signal frame.
    private const int SwReservedOffset = 464;
    private const uint FpXstateMagic1 = 0x46505853, FpXstateMagic2 = 0x46505845;

    private SignalFrame(Address start, byte[] bytes, Address sigreturnStack)
    {
        Start = start;
        Bytes = bytes;
        SigreturnStack = sigreturnStack;
    }

    /// <summary>Where the frame's bytes go, from its lowest address.</summary>
    public Address Start { get; }

    /// <summary>The frame and its XSAVE area, to be written at <see cref="Start"/>.</summary>
    public byte[] Bytes { get; }

    /// <summary>The stack pointer with which rt_sigreturn reads this frame.</summary>
    public Address SigreturnStack { get; }

    public AddressRange Range => new(Start, Start + new ByteCount((ulong)Bytes.Length));

    /// <summary>
    /// The frame that resumes a thread with <paramref name="resume"/> (registers already set up for any system call
    /// to restart), <paramref name="signalMask"/> and <paramref name="xstate"/> (its NT_X86_XSTATE regset), placed
    /// below the red zone under <paramref name="resume"/>'s stack pointer.
    /// </summary>
    public static SignalFrame For(in UserRegs resume, ulong signalMask, ReadOnlySpan<byte> xstate, ulong xfeatures)
    {
        ulong below = resume.Rsp - RedZone;
        ulong fpstate = (below - (ulong)xstate.Length - 4) & ~63UL; // XRSTOR wants 64-byte alignment
        ulong frame = ((fpstate - FrameSize) & ~15UL) - 8; // as the kernel aligns a handler's frame
        var bytes = new byte[below - frame];

        var span = bytes.AsSpan();
        var fp = span[(int)(fpstate - frame)..];
        xstate.CopyTo(fp);
        var sw = fp[SwReservedOffset..];
        sw[..48].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(sw, FpXstateMagic1);
        BinaryPrimitives.WriteUInt32LittleEndian(sw[4..], (uint)xstate.Length + 4); // extended size: with magic2
        BinaryPrimitives.WriteUInt64LittleEndian(sw[8..], xfeatures);
        BinaryPrimitives.WriteUInt32LittleEndian(sw[16..], (uint)xstate.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(fp[xstate.Length..], FpXstateMagic2);

        BinaryPrimitives.WriteUInt64LittleEndian(span[UcFlagsOffset..], UcFpXstate | UcSigcontextSs | UcStrictRestoreSs);
        BinaryPrimitives.WriteUInt32LittleEndian(span[UcStackFlagsOffset..], KeepAlternateStack);
        var sc = span[SigcontextOffset..];
        ulong[] words =
        [
            resume.R8, resume.R9, resume.R10, resume.R11, resume.R12, resume.R13, resume.R14, resume.R15,
            resume.Rdi, resume.Rsi, resume.Rbp, resume.Rbx, resume.Rdx, resume.Rax, resume.Rcx, resume.Rsp, resume.Rip, resume.Eflags,
        ];
        for (int i = 0; i < words.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(sc[(i * 8)..], words[i]);
        }
        BinaryPrimitives.WriteUInt16LittleEndian(sc[144..], (ushort)resume.Cs);
        BinaryPrimitives.WriteUInt16LittleEndian(sc[150..], (ushort)resume.Ss);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[192..], fpstate); // fpstate pointer
        BinaryPrimitives.WriteUInt64LittleEndian(span[SigmaskOffset..], signalMask);
        return new SignalFrame(new Address(frame), bytes, new Address(frame + 8));
    }
}
