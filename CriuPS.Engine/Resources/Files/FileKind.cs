using CriuPS.Engine.Dump;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Files;

/// <summary>What a descriptor is, as /proc shows it: the text of its link and the status of the open object.</summary>
internal sealed record DescriptorProbe(int Pid, int Fd, string Link, FileStatus Status)
{
    /// <summary>An anonymous-inode file such as "anon_inode:[eventfd]".</summary>
    public bool IsAnonInode(string name) => Link == $"anon_inode:[{name}]" || Link == $"anon_inode:{name}";

    /// <summary>The inode of the socket behind a descriptor (its link reads socket:[inode]); null for anything else, or a descriptor closed meanwhile.</summary>
    public static ulong? SocketInode(int pid, int fd)
    {
        try
        {
            return SocketInodeOf(ProcFiles.ReadLink($"/proc/{pid}/fd/{fd}"));
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The inode of the socket this descriptor is, or null when it is no socket.</summary>
    public ulong? SocketInode() => SocketInodeOf(Link);

    private static ulong? SocketInodeOf(string link)
    {
        const string Prefix = "socket:[";
        return link.StartsWith(Prefix, StringComparison.Ordinal) && link.EndsWith(']')
            ? ulong.Parse(link.AsSpan(Prefix.Length, link.Length - Prefix.Length - 1), System.Globalization.CultureInfo.InvariantCulture)
            : null;
    }

    /// <summary>Our own descriptor of the same open file description (pidfd_getfd), or null when it was closed or its process ended meanwhile.</summary>
    public FileDescriptor? Copy()
    {
        try
        {
            using var pidfd = Pidfd.Open(Pid);
            return Pidfd.GetFd(pidfd, Fd);
        }
        catch (NativeException e) when (e.Errno is Errno.ESRCH or Errno.EBADF)
        {
            return null;
        }
    }

    /// <summary>Every descriptor the process has open now, probed (those closed meanwhile left out).</summary>
    public static List<DescriptorProbe> All(int pid)
    {
        using var directory = DescriptorDirectory.Open(pid);
        return directory.Numbers().Select(fd => Of(directory, pid, fd)).OfType<DescriptorProbe>().ToList();
    }

    public static DescriptorProbe? Of(int pid, int fd)
    {
        try
        {
            using var directory = DescriptorDirectory.Open(pid);
            return Of(directory, pid, fd);
        }
        catch (Exception e) when (e is IOException or NativeException)
        {
            return null; // the process ended meanwhile
        }
    }

    private static DescriptorProbe? Of(DescriptorDirectory directory, int pid, int fd)
    {
        try
        {
            return new DescriptorProbe(pid, fd, directory.ReadLink(fd), directory.Status(fd));
        }
        catch (Exception e) when (e is IOException or NativeException)
        {
            return null; // closed meanwhile
        }
    }
}

/// <summary>What every open file description keeps of its own, whatever its kind: status flags and owner.</summary>
internal sealed record SavedDescription(uint Flags, FownEntry? Owner);

/// <summary>What a kind of file gets to record one open file description on dump.</summary>
/// <param name="Copy">Our own descriptor of the same open file description (pulled with pidfd_getfd).</param>
internal sealed record DescriptorDump(DumpSession Session, DumpedProcess Process, DescriptorProbe Probe, uint Id, FdInfo Info, FownEntry Owner, FileDescriptor Copy)
{
    /// <summary>The open flags of the description, without the descriptor's close-on-exec flag.</summary>
    public uint Flags => (uint)(Info.Flags & ~O.CLOEXEC);
}

/// <summary>
/// One kind of open file (regular file, pipe, eventfd, socket...): how to recognise it, save it as a file_entry,
/// and recreate the open file description in the engine for the restored process to pull in.
/// </summary>
internal abstract class FileKind
{
    public abstract FdTypes Type { get; }

    /// <summary>Whether this kind handles the descriptor.</summary>
    public abstract bool Handles(DescriptorProbe probe);

    /// <summary>Why the descriptor cannot be saved (reported by the pre-flight check), or null.</summary>
    public virtual string? Problem(DescriptorProbe probe, DumpOptions options) => null;

    /// <summary>The file_entry of a new open file description.</summary>
    public abstract FileEntry Dump(DescriptorDump dump);

    /// <summary>
    /// Whether only a restored process can open the description (/dev/tty of a restored session): then the module
    /// that restores it opens it there once the tree exists, and <see cref="Open"/> is not called.
    /// </summary>
    public virtual bool OpensInRestoredProcess(RestoreSession session, FileEntry file) => false;

    /// <summary>Recreates the open file description in the engine.</summary>
    public abstract FileDescriptor Open(RestoreSession session, FileEntry file);

    /// <summary>
    /// The saved status flags (O_NONBLOCK, O_ASYNC...: what F_SETFL changes) and owner (for SIGIO) of the description,
    /// which the restore gives the recreated description whatever kind it is.
    /// </summary>
    public abstract SavedDescription Saved(ImageSet images, FileEntry file);

    /// <summary>
    /// Work that needs the descriptor installed in the process at its number (epoll registrations, POSIX locks):
    /// runs once every descriptor of the process is in place.
    /// </summary>
    public virtual void AfterInstall(RestoreSession session, RestoringProcess process, FdinfoEntry fd, FileEntry file)
    {
    }
}
