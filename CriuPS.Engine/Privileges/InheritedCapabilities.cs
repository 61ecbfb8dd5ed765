using System.Numerics;
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

    // As sets of bits, not a query over the enum's values: each program the session starts goes through here, and a
    // fresh PowerShell compiled the query's generic code over the enum on its first checkpoint and restore.
    public static InheritedCapabilities PassOn()
    {
        var session = SessionPrivileges.Current();
        ulong missing = session.IsRoot ? 0 : session.PassedOn & ~session.Ambient;
        if (missing == 0)
        {
            return new InheritedCapabilities(null, []);
        }
        // The kernel raises an ambient capability only if it is permitted and inheritable.
        ulong inheritable = ThreadCapabilities.Inheritable;
        ThreadCapabilities.SetInheritable(inheritable | missing);
        // One refused (SECBIT_NO_CAP_AMBIENT_RAISE) leaves the host without it: what needs it then says so.
        var raised = new List<Capability>();
        for (ulong rest = missing; rest != 0; rest &= rest - 1)
        {
            var capability = (Capability)BitOperations.TrailingZeroCount(rest);
            if (ThreadCapabilities.TryRaiseAmbient(capability) == 0)
            {
                raised.Add(capability);
            }
        }
        return new InheritedCapabilities(inheritable, raised);
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
