using CriuPS.Native.Memory;
using CriuPS.Native.RemoteSyscall;
using System.Globalization;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Mounts;

/// <summary>
/// Builds a saved mount tree in the restored root by injected calls: a private copy of the restorer's namespace,
/// the saved mounts under <c>staging</c>, then pivot_root into them. Each failure names the mount point.
/// </summary>
internal sealed class MountTreeBuilder(RestoringProcess root, string staging, string imageDirectory)
{
    /// <summary>unshare(CLONE_NEWNS), and every mount private at once: nothing done next may reach the host's namespace.</summary>
    public void Begin()
    {
        Call("unshare(CLONE_NEWNS)", "/", RemoteCall.Unshare(LibC.CLONE_NEWNS));
        var scratch = root.Injection.Scratch;
        scratch.Reset();
        Call("mount(MS_REC | MS_PRIVATE)", "/", RemoteCall.Mount(scratch, null, "/", null, MountFlags.Recursive | MountFlags.Private, null));
    }

    /// <summary>
    /// Makes one saved mount, its parent made already; <paramref name="source"/> is the path it is bound from, if it
    /// is a bind; <paramref name="mounter"/> (a process of the namespace) makes a mount by type.
    /// </summary>
    public void Make(MntEntry mount, string? source, RestoringProcess mounter)
    {
        string target = mount.Mountpoint == "/" ? staging : staging + mount.Mountpoint;
        var scratch = root.Injection.Scratch;
        scratch.Reset();
        var at = scratch.PutString(target);
        if (source is not null)
        {
            Call($"bind of {source}", mount.Mountpoint, RemoteCall.Mount(scratch.PutString(source), at, Address.Null, MountFlags.Bind, Address.Null));
            // A bind takes the flags of its source: the saved ones are set by a remount of the bind alone.
            Call("remount with the saved flags", mount.Mountpoint, RemoteCall.Mount(Address.Null, at, Address.Null, MountFlags.Remount | MountFlags.Bind | mount.Flags, Address.Null));
        }
        else
        {
            var by = mounter.Injection.Scratch;
            by.Reset();
            Call($"mount of {mount.Fsname} by process {mounter.Pid}", mount.Mountpoint, RemoteCall.Mount(by, mount.Source, target, mount.Fsname, mount.Flags | mount.SbFlags, mount.Options), mounter);
            if (mount.Fstype == (uint)Fstype.Tmpfs)
            {
                Fill(mount, target);
            }
        }
        if (mount.SharedId != 0)
        {
            scratch.Reset(); // the mounter may have been the root, whose scratch the mount took
            Call("mount(MS_SHARED)", mount.Mountpoint, RemoteCall.Mount(scratch, null, target, null, MountFlags.Shared, null));
        }
    }

    // The tmpfs's files, extracted by the engine through the root's view of its namespace; a tmpfs saved read-only
    // is written before its flags: remounted read-only after.
    private void Fill(MntEntry mount, string target)
    {
        var archive = Path.Combine(imageDirectory, ImageTypes.TmpfsDev.FileName(mount.RootDev.ToString(CultureInfo.InvariantCulture)));
        if (!File.Exists(archive))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"{archive}: missing; the tmpfs mounted at {mount.Mountpoint} keeps its files there.", archive);
        }
        bool readOnly = ((mount.Flags | mount.SbFlags) & MountFlags.ReadOnly) != 0;
        var scratch = root.Injection.Scratch;
        if (readOnly)
        {
            scratch.Reset();
            Call("remount read-write to fill it", mount.Mountpoint, RemoteCall.Mount(scratch, null, target, null, MountFlags.Remount | (mount.Flags & ~MountFlags.ReadOnly), mount.Options));
        }
        TmpfsArchive.Extract(archive, $"/proc/{root.HostPid}/root{target}");
        if (readOnly)
        {
            scratch.Reset();
            Call("remount read-only", mount.Mountpoint, RemoteCall.Mount(scratch, null, target, null, MountFlags.Remount | mount.Flags | mount.SbFlags, mount.Options));
        }
    }

    /// <summary>
    /// Enters the built tree: pivot_root(".", ".") from the staging root stacks the old root on the new one, where a
    /// lazy unmount lets it go (no directory for it is needed in the new root); then to the new /.
    /// </summary>
    public void Enter()
    {
        var scratch = root.Injection.Scratch;
        scratch.Reset();
        Call("chdir to the new root", "/", RemoteCall.Chdir(scratch, staging));
        var dot = scratch.PutString(".");
        Call("pivot_root", "/", RemoteCall.PivotRoot(dot, dot));
        Call("umount2 of the restorer's tree", "/", RemoteCall.Umount2(dot, MountFlags.Detach));
        Call("chdir /", "/", RemoteCall.Chdir(scratch, "/"));
    }

    private void Call(string what, string mountPoint, RemoteCall call, RestoringProcess? by = null)
    {
        long result = (by ?? root).Caller.Call(call);
        if (result < 0 && result > -4096)
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                $"The mount namespace of process {root.Pid} could not be made again: {what} at {mountPoint} failed: {Errno.Describe((int)-result)}.",
                mountPoint, "The restore was undone; the log names each mount made before.");
        }
    }
}
