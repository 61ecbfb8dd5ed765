using System.Runtime.InteropServices;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>userfaultfd(2) and its UFFDIO_API handshake (linux/userfaultfd.h).</summary>
public static unsafe partial class Userfaultfd
{
    /// <summary>Handle faults of user space only: allowed without CAP_SYS_PTRACE when vm.unprivileged_userfaultfd is 0.</summary>
    public const ulong UserModeOnly = 1;

    public const ulong FeatureWpUnpopulated = 1UL << 13;
    public const ulong FeatureWpAsync = 1UL << 15;

    /// <summary>UFFD_API: the value UFFDIO_API expects in its api field.</summary>
    public const ulong Api = 0xAA;

    /// <summary>_IOWR(0xAA, 0x3F, struct uffdio_api).</summary>
    public const int UffdioApi = unchecked((int)0xC018AA3F);

    /// <summary>struct uffdio_api.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct UffdioApiArgs
    {
        public ulong Api;
        public ulong Features;
        public ulong Ioctls;
    }
}
