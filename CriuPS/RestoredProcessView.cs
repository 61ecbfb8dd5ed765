using System.Diagnostics;
using System.Management.Automation;
using CriuPS.Engine.Model;

namespace CriuPS;

/// <summary>
/// What Restore-Process emits: the restored process as a System.Diagnostics.Process (like Start-Process
/// -PassThru), so that Stop-Process, Wait-Process, Get-Process and Checkpoint-Process take it by value, with the
/// restore's details added as note properties.
/// </summary>
internal static class RestoredProcessView
{
    public const string TypeName = "CriuPS.RestoredProcess";

    public static PSObject For(RestoredProcess restored)
    {
        Process process;
        try
        {
            process = Process.GetProcessById(restored.Id);
        }
        catch (ArgumentException)
        {
            // Already gone: the restore's own record is all there is, and it has these details as properties.
            var record = PSObject.AsPSObject(restored);
            record.TypeNames.Insert(0, TypeName);
            AddExitStatus(record);
            return record;
        }
        var view = PSObject.AsPSObject(process);
        view.TypeNames.Insert(0, TypeName);
        // None of these names is a member of Process, of its type data or of ours, so each is added as validated:
        // checking it first made PowerShell reflect over every property and method of Process to find it missing,
        // 13 times, a few milliseconds of a fresh session's first restore.
        AddNote(view, "ImagePath", restored.ImagePath);
        AddNote(view, "HostPid", restored.HostPid);
        AddNote(view, "NamespacePid", restored.NamespacePid);
        AddNote(view, "PidNamespaceInit", restored.PidNamespaceInit);
        AddNote(view, "Detached", restored.Detached);
        AddNote(view, "MemoryBytes", restored.MemoryBytes);
        AddNote(view, "RestoreTime", restored.RestoreTime);
        AddNote(view, "ReadTime", restored.ReadTime);
        AddNote(view, "VerifyTime", restored.VerifyTime);
        AddNote(view, "MemoryTime", restored.MemoryTime);
        AddNote(view, "Cgroups", restored.Cgroups);
        AddNote(view, "LogPath", restored.LogPath);
        if (restored.LazyRestore is not null)
        {
            AddNote(view, "LazyRestore", restored.LazyRestore);
        }
        AddExitStatus(view);
        return view;
    }

    /// <summary>
    /// The exit status of a restored process that stayed our child, once it has ended (null before, or for one
    /// restored with -Detach); in a new PID namespace, its init's, which ends with it and with its status.
    /// Process.ExitCode cannot say: .NET did not start this process.
    /// </summary>
    public static object? ExitStatus(PSObject instance) =>
        (instance.Properties["PidNamespaceInit"]?.Value as int? ?? instance.Properties["Id"]?.Value as int?) is int id
            && Engine.Restore.ChildReaper.TryGetExitCode(id, out var code) ? code : null;

    private static void AddExitStatus(PSObject view) =>
        view.Properties.Add(new PSCodeProperty("ExitStatus", typeof(RestoredProcessView).GetMethod(nameof(ExitStatus))), preValidated: true);

    private static void AddNote(PSObject view, string name, object? value) =>
        view.Properties.Add(new PSNoteProperty(name, value), preValidated: true);
}
