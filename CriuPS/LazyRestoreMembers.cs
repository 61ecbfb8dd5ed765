using System.Management.Automation;
using CriuPS.Engine.Lazy;

namespace CriuPS;

/// <summary>Members CriuPS.Types.ps1xml adds to the LazyRestore objects of Restore-Process -LazyPages.</summary>
public static class LazyRestoreMembers
{
    /// <summary>The failure of a lazy restore as the error record Wait-LazyRestore writes (null unless it failed).</summary>
    public static ErrorRecord? ErrorRecord(PSObject instance) =>
        instance.BaseObject is LazyRestore { Error: { } error } restore ? ErrorRecords.From(error, restore.ProcessId) : null;
}
