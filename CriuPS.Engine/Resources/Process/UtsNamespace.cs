using CriuPS.Native.RemoteSyscall;
using System.Globalization;
using System.Text;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Process;

/// <summary>
/// A UTS namespace of the tree's own (unshare -u, a container's): its host and domain name, in utsns-ID.img as CRIU
/// writes it, with inventory.img's root_ids naming the dumping engine's UTS namespace, so that CRIU, seeing the root's
/// differ, creates the namespace from the image too. As CRIU, one such namespace, the root's, shared by every process
/// of the tree; a process in another is refused before the freeze. At restore the root unshares a new UTS namespace
/// and names it, and every other process of the tree joins it.
/// </summary>
internal static class UtsNamespace
{
    private const int FieldLength = 65; // struct utsname: six fields of __NEW_UTS_LEN + 1 bytes
    private const int NodenameOffset = 1 * FieldLength, DomainnameOffset = 5 * FieldLength;

    /// <summary>
    /// At dump, for the root: a UTS namespace of its own is saved (its names read with uname in the frozen root) and
    /// root_ids will name the engine's.
    /// </summary>
    public static void Dump(DumpSession session, DumpedProcess root)
    {
        if (ProcessNamespaces.IsEngines(root.Pid, "uts"))
        {
            return;
        }
        var scratch = root.Injection.Scratch;
        scratch.Reset();
        var names = scratch.Reserve(6 * FieldLength);
        root.Injection.Caller.Checked("uname", RemoteCall.Uname(names));
        var bytes = root.Memory.Read(names, 6 * FieldLength);
        var entry = new UtsnsEntry { Nodename = Field(bytes, NodenameOffset), Domainname = Field(bytes, DomainnameOffset) };
        session.WriteSingle(ImageTypes.Utsns, root.Ids.UtsNsId.ToString(CultureInfo.InvariantCulture), entry);
        session.Log.Detail($"UTS namespace of {root.Pid}: host name '{entry.Nodename}', domain name '{entry.Domainname}'");
    }

    /// <summary>The saved UTS namespace of the image's root, or null when the root lived in the dumping engine's.</summary>
    public static UtsnsEntry? Saved(ImageSet images)
    {
        var rootIds = images.Inventory.RootIds;
        uint ns = images.Root.Ids.UtsNsId;
        if (rootIds is null || !rootIds.HasUtsNsId || rootIds.UtsNsId == ns)
        {
            return null;
        }
        var entries = images.Entries(ImageTypes.Utsns, ns.ToString(CultureInfo.InvariantCulture));
        var file = Path.Combine(images.Directory, ImageTypes.Utsns.FileName(ns.ToString(CultureInfo.InvariantCulture)));
        return entries.Count == 1 ? (UtsnsEntry)entries[0].Message : throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
            $"{file}: the root's UTS namespace ({ns}) is not the dumping tool's ({rootIds.UtsNsId}), and this image should hold its names in one entry; it holds {entries.Count}.", file);
    }

    /// <summary>What this session lacks to make the namespace: unshare(CLONE_NEWUTS) needs CAP_SYS_ADMIN.</summary>
    public static IEnumerable<Obstacle> Obstacles(ImageSet images, SessionPrivileges privileges)
    {
        if (Saved(images) is { } saved && !privileges.Has(Capability.SysAdmin))
        {
            yield return new($"it lived in a UTS namespace of its own (host name '{saved.Nodename}'), and making one needs CAP_SYS_ADMIN", Capability.SysAdmin);
        }
    }

    /// <summary>At restore, before the credentials change: the root makes and names the namespace, the others join it.</summary>
    public static void Restore(RestoreSession session, IReadOnlyList<RestoringProcess> processes)
    {
        if (Saved(session.Images) is not { } saved)
        {
            return;
        }
        var root = processes[0];
        var caller = root.Caller;
        var scratch = root.Injection.Scratch;
        caller.Checked("unshare(CLONE_NEWUTS)", RemoteCall.Unshare(LibC.CLONE_NEWUTS));
        scratch.Reset();
        var host = Encoding.UTF8.GetBytes(saved.Nodename);
        caller.Checked($"sethostname('{saved.Nodename}')", RemoteCall.Sethostname(scratch, host));
        var domain = Encoding.UTF8.GetBytes(saved.Domainname);
        caller.Checked($"setdomainname('{saved.Domainname}')", RemoteCall.Setdomainname(scratch, domain));
        foreach (var process in processes.Skip(1))
        {
            ProcessNamespaces.Join(process.Injection, $"/proc/{root.HostPid}/ns/uts", LibC.CLONE_NEWUTS, $"the UTS namespace of {root.Pid}");
        }
        session.Log.Detail($"UTS namespace made again: host name '{saved.Nodename}', domain name '{saved.Domainname}', {processes.Count} process(es) in it");
    }

    private static string Field(byte[] names, int offset)
    {
        var field = names.AsSpan(offset, FieldLength);
        int end = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? field : field[..end]);
    }
}
