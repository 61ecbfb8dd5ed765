namespace CriuPS.Native.Interop;

/// <summary>prlimit64(2): read and set another process's resource limits without entering it.</summary>
public static unsafe class Prlimit
{
    /// <summary>RLIM_NLIMITS on Linux: CPU..RTTIME.</summary>
    public const int ResourceCount = 16;
    public const int RLIMIT_DATA = 2;
    public const int RLIMIT_NOFILE = 7;

    public static ResourceLimit Get(int pid, int resource)
    {
        ResourceLimit limit;
        Syscall.Checked($"prlimit64({pid}, {resource})", SystemCall.Prlimit64, (ulong)pid, (ulong)resource, 0, (ulong)&limit);
        return limit;
    }

    /// <summary>Sets a limit; returns 0 or -errno (raising a hard limit needs CAP_SYS_RESOURCE).</summary>
    public static long TrySet(int pid, int resource, ResourceLimit limit) =>
        Syscall.Raw(SystemCall.Prlimit64, (ulong)pid, (ulong)resource, (ulong)&limit, 0);
}
