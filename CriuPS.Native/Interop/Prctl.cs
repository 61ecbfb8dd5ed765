namespace CriuPS.Native.Interop;

/// <summary>The prctl(2) and arch_prctl(2) queries that tell what the kernel can restore, and what this thread may do.</summary>
public static unsafe class Prctl
{
    private const ulong PrGetSecurebits = 27;
    private const ulong PrSetMm = 35;
    private const ulong PrSetMmMapSize = 15;
    private const ulong PrTimerCreateRestoreIds = 77;
    private const ulong RestoreIdsGet = 2;
    private const ulong ArchShstkStatus = 0x5005;
    private const ulong ArchGetXcompSupp = 0x1021;

    /// <summary>prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE): the size of struct prctl_mm_map the kernel expects, or -errno.</summary>
    public static long MmMapSize()
    {
        uint size = 0;
        long result = Syscall.Raw(SystemCall.Prctl, PrSetMm, PrSetMmMapSize, (ulong)&size, 0, 0);
        return result < 0 ? result : size;
    }

    /// <summary>prctl(PR_GET_SECUREBITS): this thread's securebits (SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP...).</summary>
    public static uint Securebits() => (uint)Syscall.Checked("prctl(PR_GET_SECUREBITS)", SystemCall.Prctl, PrGetSecurebits);

    /// <summary>prctl(PR_TIMER_CREATE_RESTORE_IDS, GET): 0 or 1 (whether timer_create restores ids for this process now), or -errno.</summary>
    public static long TimerCreateRestoreIds() => Syscall.Raw(SystemCall.Prctl, PrTimerCreateRestoreIds, RestoreIdsGet, 0, 0, 0);

    /// <summary>arch_prctl(ARCH_SHSTK_STATUS): the shadow stack features enabled for this thread, or -errno.</summary>
    public static long ShadowStackStatus()
    {
        ulong features = 0;
        long result = Syscall.Raw(SystemCall.ArchPrctl, ArchShstkStatus, (ulong)&features);
        return result < 0 ? result : (long)features;
    }

    /// <summary>
    /// arch_prctl(ARCH_GET_XCOMP_SUPP), Linux 5.16+: the XSAVE state components the kernel enabled for user space (what
    /// it put in XCR0, x87 and SSE included), or -errno.
    /// </summary>
    public static long XStateComponentsEnabled()
    {
        ulong components = 0;
        long result = Syscall.Raw(SystemCall.ArchPrctl, ArchGetXcompSupp, (ulong)&components);
        return result < 0 ? result : (long)components;
    }
}
