using CriuPS.Native.Arch.X86_64;

namespace CriuPS.Native.Interop;

/// <summary>Thin, checked wrappers of ptrace(2). Every call must come from the tracing thread.</summary>
public static unsafe class Ptrace
{
    public const int SigInfoSize = 128;

    public static void Seize(int tid, PtraceOptions options) =>
        Syscall.Checked($"ptrace(PTRACE_SEIZE, {tid})", SystemCall.Ptrace, (ulong)PtraceRequest.Seize, (ulong)tid, 0, (ulong)options);

    public static void SetOptions(int tid, PtraceOptions options) =>
        Syscall.Checked($"ptrace(PTRACE_SETOPTIONS, {tid})", SystemCall.Ptrace, (ulong)PtraceRequest.SetOptions, (ulong)tid, 0, (ulong)options);

    public static void Interrupt(int tid) =>
        Syscall.Checked($"ptrace(PTRACE_INTERRUPT, {tid})", SystemCall.Ptrace, (ulong)PtraceRequest.Interrupt, (ulong)tid);

    /// <summary>PTRACE_LISTEN: leaves a thread in its group stop while still reporting the signals it gets.</summary>
    public static void Listen(int tid) =>
        Syscall.Checked($"ptrace(PTRACE_LISTEN, {tid})", SystemCall.Ptrace, (ulong)PtraceRequest.Listen, (ulong)tid);

    public static void Cont(int tid, int signal = 0) =>
        Syscall.Checked($"ptrace(PTRACE_CONT, {tid})", SystemCall.Ptrace, (ulong)PtraceRequest.Cont, (ulong)tid, 0, (ulong)signal);

    public static void SyscallStep(int tid, int signal = 0) =>
        Syscall.Checked($"ptrace(PTRACE_SYSCALL, {tid})", SystemCall.Ptrace, (ulong)PtraceRequest.Syscall, (ulong)tid, 0, (ulong)signal);

    public static void Detach(int tid, int signal = 0) =>
        Syscall.Checked($"ptrace(PTRACE_DETACH, {tid})", SystemCall.Ptrace, (ulong)PtraceRequest.Detach, (ulong)tid, 0, (ulong)signal);

    /// <summary>Detach, ignoring a tracee that is already gone.</summary>
    public static long TryDetach(int tid, int signal = 0) =>
        Syscall.Raw(SystemCall.Ptrace, (ulong)PtraceRequest.Detach, (ulong)tid, 0, (ulong)signal);

    public static ulong GetEventMessage(int tid)
    {
        ulong message;
        Syscall.Checked($"ptrace(PTRACE_GETEVENTMSG, {tid})", SystemCall.Ptrace, (ulong)PtraceRequest.GetEventMsg, (ulong)tid, 0, (ulong)&message);
        return message;
    }

    public static UserRegs GetRegs(int tid)
    {
        UserRegs regs;
        Syscall.Checked($"ptrace(PTRACE_GETREGS, {tid})", SystemCall.Ptrace, (ulong)PtraceRequest.GetRegs, (ulong)tid, 0, (ulong)&regs);
        return regs;
    }

    public static void SetRegs(int tid, in UserRegs regs)
    {
        fixed (UserRegs* p = &regs)
        {
            Syscall.Checked($"ptrace(PTRACE_SETREGS, {tid})", SystemCall.Ptrace, (ulong)PtraceRequest.SetRegs, (ulong)tid, 0, (ulong)p);
        }
    }

    /// <summary>Reads a register set into <paramref name="buffer"/>; returns the number of bytes the kernel filled.</summary>
    public static int GetRegSet(int tid, ulong type, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            var iov = new IoVec { Base = (ulong)p, Length = (ulong)buffer.Length };
            Syscall.Checked($"ptrace(PTRACE_GETREGSET, {tid}, 0x{type:x})", SystemCall.Ptrace, (ulong)PtraceRequest.GetRegSet, (ulong)tid, type, (ulong)&iov);
            return (int)iov.Length;
        }
    }

    public static void SetRegSet(int tid, ulong type, ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            var iov = new IoVec { Base = (ulong)p, Length = (ulong)buffer.Length };
            Syscall.Checked($"ptrace(PTRACE_SETREGSET, {tid}, 0x{type:x})", SystemCall.Ptrace, (ulong)PtraceRequest.SetRegSet, (ulong)tid, type, (ulong)&iov);
        }
    }

    public static ulong GetSigMask(int tid)
    {
        ulong mask;
        Syscall.Checked($"ptrace(PTRACE_GETSIGMASK, {tid})", SystemCall.Ptrace, (ulong)PtraceRequest.GetSigMask, (ulong)tid, 8, (ulong)&mask);
        return mask;
    }

    public static void SetSigMask(int tid, ulong mask) =>
        Syscall.Checked($"ptrace(PTRACE_SETSIGMASK, {tid})", SystemCall.Ptrace, (ulong)PtraceRequest.SetSigMask, (ulong)tid, 8, (ulong)&mask);

    /// <summary>The siginfo of the signal that caused the current stop.</summary>
    public static byte[] GetSigInfo(int tid)
    {
        var info = new byte[SigInfoSize];
        fixed (byte* p = info)
        {
            Syscall.Checked($"ptrace(PTRACE_GETSIGINFO, {tid})", SystemCall.Ptrace, (ulong)PtraceRequest.GetSigInfo, (ulong)tid, 0, (ulong)p);
        }
        return info;
    }

    /// <summary>Reads queued signals without dequeuing them: each entry is a 128-byte siginfo.</summary>
    public static List<byte[]> PeekPendingSignals(int tid, bool sharedQueue)
    {
        var result = new List<byte[]>();
        const int batch = 32;
        var buffer = new byte[batch * SigInfoSize];
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var args = new PeekSigInfoArgs { Offset = (ulong)result.Count, Flags = sharedQueue ? PeekSigInfoArgs.Shared : 0, Count = batch };
                long n = Syscall.Checked($"ptrace(PTRACE_PEEKSIGINFO, {tid})", SystemCall.Ptrace, (ulong)PtraceRequest.PeekSigInfo, (ulong)tid, (ulong)&args, (ulong)p);
                for (int i = 0; i < n; i++)
                {
                    result.Add(buffer.AsSpan(i * SigInfoSize, SigInfoSize).ToArray());
                }
                if (n < batch)
                {
                    return result;
                }
            }
        }
    }

    /// <summary>
    /// The BPF program of a thread's seccomp filter number <paramref name="index"/> (0 is the newest), or null past
    /// the oldest one.
    /// </summary>
    public static byte[]? GetSeccompFilter(int tid, ulong index)
    {
        long instructions = Syscall.Raw(SystemCall.Ptrace, (ulong)PtraceRequest.SeccompGetFilter, (ulong)tid, index, 0);
        if (instructions == -Errno.ENOENT)
        {
            return null;
        }
        if (instructions < 0)
        {
            throw new NativeException($"ptrace(PTRACE_SECCOMP_GET_FILTER, {tid}, {index})", (int)-instructions);
        }
        var program = new byte[instructions * 8];
        fixed (byte* p = program)
        {
            Syscall.Checked($"ptrace(PTRACE_SECCOMP_GET_FILTER, {tid}, {index})", SystemCall.Ptrace, (ulong)PtraceRequest.SeccompGetFilter, (ulong)tid, index, (ulong)p);
        }
        return program;
    }

    /// <summary>The SECCOMP_FILTER_FLAG_* flags a thread's filter number <paramref name="index"/> was installed with.</summary>
    public static ulong GetSeccompFlags(int tid, ulong index)
    {
        ulong* metadata = stackalloc ulong[2];
        metadata[0] = index;
        metadata[1] = 0;
        Syscall.Checked($"ptrace(PTRACE_SECCOMP_GET_METADATA, {tid}, {index})", SystemCall.Ptrace, (ulong)PtraceRequest.SeccompGetMetadata, (ulong)tid, 16, (ulong)metadata);
        return metadata[1];
    }

    /// <summary>The thread's rseq registration, or null when it has none.</summary>
    public static RseqConfiguration? GetRseqConfiguration(int tid)
    {
        RseqConfiguration config;
        Syscall.Checked($"ptrace(PTRACE_GET_RSEQ_CONFIGURATION, {tid})", SystemCall.Ptrace, (ulong)PtraceRequest.GetRseqConfiguration, (ulong)tid, (ulong)sizeof(RseqConfiguration), (ulong)&config);
        return config.RseqAbiPointer == 0 ? null : config;
    }
}
