using CriuPS.Engine.Privileges;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Support;

/// <summary>
/// clone3 with set_tid cannot be tried without creating a process; the probe checks that clone3 exists (a call
/// with no arguments is refused with EINVAL, not ENOSYS), the kernel version, and the capability set_tid needs.
/// </summary>
internal sealed class Clone3SetTidProbe : FeatureProbe
{
    private static readonly Version SetTidKernel = new(5, 5);

    public override string Name => "Clone3SetTid";

    public override bool Essential => true;

    public override string Requirement => "clone3 with set_tid (Linux 5.5+) and CAP_CHECKPOINT_RESTORE (Linux 5.9+) or CAP_SYS_ADMIN in the effective set";

    public override string Impact => "Restore-Process cannot give restored processes and threads their saved PIDs, so nothing can be restored.";

    public override (bool, string) Check()
    {
        long answer = Syscall.Raw(SystemCall.Clone3, 0, 0);
        bool present = answer == -Errno.EINVAL;
        bool newEnough = KernelFacts.Version >= SetTidKernel;
        var session = SessionPrivileges.Current();
        bool allowed = session.CanCheckpointRestore;
        string detail = $"kernel {KernelFacts.Release}; clone3 {(present ? "present" : $"answers {Errno.Describe((int)-answer)}")}; "
            + $"{session.Describe(Capability.CheckpointRestore)}, {session.Describe(Capability.SysAdmin)}";
        return (present && newEnough && allowed, detail);
    }
}
