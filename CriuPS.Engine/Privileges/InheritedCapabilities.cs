using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Privileges;

/// <summary>
/// Lets a program this thread starts keep the session's capabilities. A restore works inside a host process that
/// the engine starts: clone3 with set_tid and PR_SET_MM_MAP run there, and need CAP_CHECKPOINT_RESTORE there, and a
/// restored process pulls our descriptors with pidfd_getfd, which it may do only holding every capability we hold.
/// Root's programs have them anyway; another user's lose every capability at exec, unless it is ambient (granted by
/// setpriv --ambient-caps it already is; granted to the PowerShell binary with setcap it is not). The capabilities
/// are raised to ambient on this thread only, and lowered again on dispose.
/// </summary>
internal sealed class InheritedCapabilities : IDisposable
{
    // The inheritable set to put back, when it was changed.
    private readonly ulong? inheritableBefore;
    private readonly List<Capability> raised;

    private InheritedCapabilities(ulong? inheritableBefore, List<Capability> raised)
    {
        this.inheritableBefore = inheritableBefore;
        this.raised = raised;
    }

    public static InheritedCapabilities PassOn()
    {
        var session = SessionPrivileges.Current();
        var missing = Enum.GetValues<Capability>().Where(c => !session.IsRoot && c.In(session.PassedOn) && !c.In(session.Ambient)).ToList();
        if (missing.Count == 0)
        {
            return new InheritedCapabilities(null, []);
        }
        // The kernel raises an ambient capability only if it is permitted and inheritable.
        ulong inheritable = ThreadCapabilities.Inheritable;
        ThreadCapabilities.SetInheritable(inheritable | missing.Aggregate(0UL, (set, c) => set | c.Bit()));
        // One refused (SECBIT_NO_CAP_AMBIENT_RAISE) leaves the host without it: what needs it then says so.
        return new InheritedCapabilities(inheritable, missing.Where(c => ThreadCapabilities.TryRaiseAmbient(c) == 0).ToList());
    }

    public void Dispose()
    {
        foreach (var capability in raised)
        {
            ThreadCapabilities.LowerAmbient(capability);
        }
        if (inheritableBefore is { } before)
        {
            ThreadCapabilities.SetInheritable(before);
        }
    }
}
