using System.Runtime.InteropServices;

namespace CriuPS.Native.Interop;

/// <summary>The kernel's struct sigaction, as rt_sigaction(2) takes and gives it on x86-64.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KernelSigaction
{
    public const int SigsetSize = 8;
    private const ulong Default = 0, Ignored = 1; // SIG_DFL, SIG_IGN

    public ulong Handler;
    public ulong Flags;
    public ulong Restorer;
    public ulong Mask;

    /// <summary>Whether this process runs a handler of its own for <paramref name="signal"/> (neither the default action nor ignored).</summary>
    public static bool IsHandled(int signal)
    {
        KernelSigaction current;
        Syscall.Checked($"rt_sigaction({signal})", SystemCall.RtSigaction, (ulong)signal, 0, (ulong)&current, SigsetSize);
        return current.Handler is not (Default or Ignored);
    }
}
