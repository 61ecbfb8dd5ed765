using CriuPS.Native.Arch;
using CriuPS.Native.Memory;

namespace CriuPS.Native.RemoteSyscall;

// Calls on the target process and thread: prctl settings, sessions and groups, namespaces, the attributes a thread
// sets for itself, its exit.
public readonly partial record struct RemoteCall
{
    // prctl(2) options (linux/prctl.h).
    private const ulong PrSetPdeathsig = 1, PrGetPdeathsig = 2, PrGetDumpable = 3, PrSetDumpable = 4, PrSetName = 15, PrGetName = 16;
    private const ulong PrCapbsetDrop = 24, PrGetSecurebits = 27, PrSetSecurebits = 28, PrSetMm = 35, PrSetMmMap = 14;
    private const ulong PrSetChildSubreaper = 36, PrGetChildSubreaper = 37, PrSetNoNewPrivs = 38, PrGetTidAddress = 40;
    private const ulong PrSetThpDisable = 41, PrGetThpDisable = 42, PrCapAmbient = 47, PrCapAmbientRaise = 2, PrCapAmbientClearAll = 4;
    private const ulong PrSetMemoryMerge = 67, PrTimerCreateRestoreIds = 77;
    private const ulong RseqFlagUnregister = 1;

    public static RemoteCall GetDumpable() => new(SystemCall.Prctl, PrGetDumpable);

    public static RemoteCall SetDumpable(uint dumpable) => new(SystemCall.Prctl, PrSetDumpable, dumpable);

    public static RemoteCall GetThpDisable() => new(SystemCall.Prctl, PrGetThpDisable);

    public static RemoteCall DisableThp() => new(SystemCall.Prctl, PrSetThpDisable, 1);

    /// <summary>prctl(PR_SET_MM, PR_SET_MM_MAP) of the struct prctl_mm_map of <paramref name="size"/> at <paramref name="map"/>.</summary>
    public static RemoteCall SetMmMap(Address map, ByteCount size) => new(SystemCall.Prctl, PrSetMm, PrSetMmMap, map.Value, size.Value, 0);

    /// <summary>prctl(PR_SET_MEMORY_MERGE, 1): KSM merges every area of the process.</summary>
    public static RemoteCall MergeAllMemory() => new(SystemCall.Prctl, PrSetMemoryMerge, 1);

    /// <summary>prctl(PR_GET_TID_ADDRESS): the clear_child_tid address, written to <paramref name="into"/>.</summary>
    public static RemoteCall GetTidAddress(Address into) => new(SystemCall.Prctl, PrGetTidAddress, into.Value);

    /// <summary>prctl(PR_GET_PDEATHSIG): the parent-death signal, written to <paramref name="into"/>.</summary>
    public static RemoteCall GetParentDeathSignal(Address into) => new(SystemCall.Prctl, PrGetPdeathsig, into.Value);

    public static RemoteCall SetParentDeathSignal(uint signal) => new(SystemCall.Prctl, PrSetPdeathsig, signal);

    /// <summary>prctl(PR_GET_NAME): the thread's comm, NUL-terminated in the 16 bytes at <paramref name="into"/>.</summary>
    public static RemoteCall GetName(Address into) => new(SystemCall.Prctl, PrGetName, into.Value);

    /// <summary>prctl(PR_SET_NAME) of the thread's comm, put in <paramref name="scratch"/>.</summary>
    public static RemoteCall SetName(ScratchArea scratch, string name) => new(SystemCall.Prctl, PrSetName, scratch.PutString(name).Value);

    public static RemoteCall GetSecurebits() => new(SystemCall.Prctl, PrGetSecurebits);

    public static RemoteCall SetSecurebits(uint bits) => new(SystemCall.Prctl, PrSetSecurebits, bits);

    /// <summary>prctl(PR_CAPBSET_DROP): <paramref name="capability"/> out of the bounding set.</summary>
    public static RemoteCall DropBoundingCapability(int capability) => new(SystemCall.Prctl, PrCapbsetDrop, (ulong)capability);

    public static RemoteCall ClearAmbientCapabilities() => new(SystemCall.Prctl, PrCapAmbient, PrCapAmbientClearAll);

    public static RemoteCall RaiseAmbientCapability(int capability) => new(SystemCall.Prctl, PrCapAmbient, PrCapAmbientRaise, (ulong)capability);

    public static RemoteCall SetNoNewPrivileges() => new(SystemCall.Prctl, PrSetNoNewPrivs, 1);

    /// <summary>prctl(PR_GET_CHILD_SUBREAPER): 0 or 1, written to <paramref name="into"/>.</summary>
    public static RemoteCall GetChildSubreaper(Address into) => new(SystemCall.Prctl, PrGetChildSubreaper, into.Value);

    public static RemoteCall SetChildSubreaper() => new(SystemCall.Prctl, PrSetChildSubreaper, 1);

    /// <summary>prctl(PR_TIMER_CREATE_RESTORE_IDS): while on, timer_create takes the id it is given.</summary>
    public static RemoteCall TimerCreateRestoreIds(bool on) => new(SystemCall.Prctl, PrTimerCreateRestoreIds, on ? 1UL : 0);

    public static RemoteCall Setsid() => new(SystemCall.Setsid);

    /// <summary>setpgid(0, <paramref name="group"/>): the calling process into <paramref name="group"/> (0: a group of its own).</summary>
    public static RemoteCall JoinProcessGroup(int group) => new(SystemCall.Setpgid, 0, (ulong)group);

    /// <summary>wait4 of <paramref name="pid"/>, its status and usage not asked for.</summary>
    public static RemoteCall Wait4(int pid, int options) => new(SystemCall.Wait4, (ulong)pid, 0, (ulong)options, 0);

    public static RemoteCall ExitGroup(int status) => new(SystemCall.ExitGroup, (ulong)status);

    public static RemoteCall Personality(uint persona) => new(SystemCall.Personality, persona);

    public static RemoteCall Membarrier(ulong command) => new(SystemCall.Membarrier, command, 0, 0);

    /// <summary>seccomp(<paramref name="operation"/>) with its flags and the argument at <paramref name="arguments"/>.</summary>
    public static RemoteCall Seccomp(uint operation, uint flags, Address arguments) => new(SystemCall.Seccomp, operation, flags, arguments.Value);

    /// <summary>unshare of the CLONE_NEW* namespaces in <paramref name="flags"/>.</summary>
    public static RemoteCall Unshare(int flags) => new(SystemCall.Unshare, (ulong)flags);

    public static RemoteCall Setns(int fd, int type) => new(SystemCall.Setns, (ulong)fd, (ulong)type);

    /// <summary>uname into the struct utsname at <paramref name="into"/>.</summary>
    public static RemoteCall Uname(Address into) => new(SystemCall.Uname, into.Value);

    /// <summary>sethostname of <paramref name="name"/>'s bytes (no NUL), put in <paramref name="scratch"/>.</summary>
    public static RemoteCall Sethostname(ScratchArea scratch, ReadOnlySpan<byte> name) => new(SystemCall.Sethostname, scratch.Put(name).Value, (ulong)name.Length);

    /// <summary>setdomainname of <paramref name="name"/>'s bytes (no NUL), put in <paramref name="scratch"/>.</summary>
    public static RemoteCall Setdomainname(ScratchArea scratch, ReadOnlySpan<byte> name) => new(SystemCall.Setdomainname, scratch.Put(name).Value, (ulong)name.Length);

    /// <summary>clock_gettime of <paramref name="clock"/> into the struct timespec at <paramref name="into"/>.</summary>
    public static RemoteCall ClockGettime(int clock, Address into) => new(SystemCall.ClockGettime, (ulong)clock, into.Value);

    /// <summary>clone3 with the struct clone_args of <paramref name="size"/> at <paramref name="arguments"/>: the child's id.</summary>
    public static RemoteCall<int> Clone3(Address arguments, ByteCount size) => ReturningNumber(new(SystemCall.Clone3, arguments.Value, size.Value));

    /// <summary>rseq registration of the area at <paramref name="area"/>.</summary>
    public static RemoteCall RegisterRseq(ulong area, uint size, uint signature) => new(SystemCall.Rseq, area, size, 0, signature);

    public static RemoteCall UnregisterRseq(ulong area, uint size, uint signature) => new(SystemCall.Rseq, area, size, RseqFlagUnregister, signature);

    public static RemoteCall SetTidAddress(ulong address) => new(SystemCall.SetTidAddress, address);

    public static RemoteCall SetRobustList(ulong head, ulong length) => new(SystemCall.SetRobustList, head, length);

    /// <summary>sigaltstack: the stack_t at <paramref name="newStack"/> set, the old one written to <paramref name="oldStack"/> (either null).</summary>
    public static RemoteCall Sigaltstack(Address newStack, Address oldStack) => new(SystemCall.Sigaltstack, newStack.Value, oldStack.Value);

    /// <summary>prlimit64 of the calling process's <paramref name="resource"/>: the old limits written to <paramref name="oldLimit"/>.</summary>
    public static RemoteCall GetResourceLimit(int resource, Address oldLimit) => new(SystemCall.Prlimit64, 0, (ulong)resource, 0, oldLimit.Value);
}
