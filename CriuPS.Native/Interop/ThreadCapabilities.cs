using System.Runtime.InteropServices;
using CriuPS.Native.Proc;

namespace CriuPS.Native.Interop;

/// <summary>
/// capget(2), capset(2) and prctl(PR_CAP_AMBIENT) on the calling thread: capabilities belong to threads, each call
/// changes the calling thread only, and a program the thread starts inherits from that thread alone.
/// </summary>
public static unsafe class ThreadCapabilities
{
    private const uint Version3 = 0x20080522;
    private const ulong PrCapAmbient = 47, AmbientRaise = 2, AmbientLower = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct Header
    {
        public uint Version;
        public int Pid;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Data
    {
        public uint Effective, Permitted, Inheritable;
    }

    /// <summary>The inheritable set of this thread.</summary>
    public static ulong Inheritable
    {
        get
        {
            var (_, _, inheritable) = Get();
            return inheritable;
        }
    }

    /// <summary>Replaces this thread's inheritable set; the effective and permitted sets stay.</summary>
    public static void SetInheritable(ulong inheritable)
    {
        var (effective, permitted, _) = Get();
        var header = new Header { Version = Version3 };
        var data = stackalloc Data[2];
        data[0] = new Data { Effective = (uint)effective, Permitted = (uint)permitted, Inheritable = (uint)inheritable };
        data[1] = new Data { Effective = (uint)(effective >> 32), Permitted = (uint)(permitted >> 32), Inheritable = (uint)(inheritable >> 32) };
        Syscall.Checked("capset", SystemCall.Capset, (ulong)&header, (ulong)data);
    }

    /// <summary>Adds a capability of the permitted and inheritable sets to the ambient set: programs this thread starts keep it.</summary>
    public static long TryRaiseAmbient(Capability capability) => Syscall.Raw(SystemCall.Prctl, PrCapAmbient, AmbientRaise, (ulong)capability);

    public static void LowerAmbient(Capability capability) =>
        Syscall.Checked($"prctl(PR_CAP_AMBIENT_LOWER, {capability.KernelName()})", SystemCall.Prctl, PrCapAmbient, AmbientLower, (ulong)capability);

    private static (ulong Effective, ulong Permitted, ulong Inheritable) Get()
    {
        var header = new Header { Version = Version3 };
        var data = stackalloc Data[2];
        Syscall.Checked("capget", SystemCall.Capget, (ulong)&header, (ulong)data);
        return (data[0].Effective | (ulong)data[1].Effective << 32, data[0].Permitted | (ulong)data[1].Permitted << 32,
            data[0].Inheritable | (ulong)data[1].Inheritable << 32);
    }
}
