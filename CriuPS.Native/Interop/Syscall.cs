using CriuPS.Native.Arch;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// The raw syscall(2) entry for calls that Tmds.LibC does not bind (ptrace, pidfd_*, process_vm_*, prlimit64...).
/// The host is the architecture CriuPS checkpoints, so a call is named as an injected one is and numbered by the same
/// table (<see cref="IArchitecture.NumberOf"/>): the wrappers hold no number, and a new architecture needs none of them changed.
/// </summary>
public static unsafe class Syscall
{
    /// <summary>Runs a system call and returns its result, or -errno on failure (the kernel's own convention).</summary>
    public static long Raw(SystemCall number, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0, ulong a5 = 0, ulong a6 = 0)
    {
        ssize_t raw = LibC.syscall((void*)IArchitecture.Current.NumberOf(number), (void*)a1, (void*)a2, (void*)a3, (void*)a4, (void*)a5, (void*)a6);
        long result = (long)raw;
        return result == -1 ? -LibC.errno : result;
    }

    /// <summary>Runs a system call; throws <see cref="NativeException"/> naming <paramref name="name"/> when it fails.</summary>
    public static long Checked(string name, SystemCall number, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0, ulong a5 = 0, ulong a6 = 0)
    {
        long result = Raw(number, a1, a2, a3, a4, a5, a6);
        if (Failed(result))
        {
            throw new NativeException(name, (int)-result);
        }
        return result;
    }

    /// <summary>Whether a result of <see cref="Raw"/> is a failure (-errno) rather than a value.</summary>
    public static bool Failed(long result) => result < 0 && result > -4096;
}
