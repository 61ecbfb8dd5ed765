using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Support;

namespace CriuPS.Engine.Restore.Checks;

/// <summary>
/// The open files of an image hold together: each file of files.img has an id of its own and the description its
/// kind calls for, and whatever names a file by its id (a descriptor in fdinfo-N.img, the working and root directory
/// in fs-PID.img, the executable and the mapped files in mm-PID.img) finds one of the right kind.
/// </summary>
internal static class FileChecks
{
    /// <summary>The files of files.img by id, once each is checked.</summary>
    public static Dictionary<uint, FileEntry> Index(string path, IReadOnlyList<FileEntry> files)
    {
        string Entry(int i) => $"{ImageDamage.Entry(i)} ({files[i].Type})";
        var index = ImageDamage.UniqueBy(files, f => f.Id, path, "id", Entry);
        for (int i = 0; i < files.Count; i++)
        {
            var file = files[i];
            if (!Descriptions.TryGetValue(file.Type, out var kind))
            {
                continue; // no kind of file CRIU writes (UND, or a number no kind has): the restore refuses it by its type
            }
            if (kind.Of(file) is not { } description)
            {
                throw ImageDamage.In(path, $"{Entry(i)}: a {file.Type} file without its description ({kind.Name}).");
            }
            // The description repeats the file's id, and CRIU's readers use either.
            if (description.Id != file.Id)
            {
                throw ImageDamage.In(path, $"{Entry(i)}: its id is {file.Id} but its {kind.Name}.id is {description.Id}.");
            }
        }
        var sockets = files.Where(f => f.Type == FdTypes.Unixsk).ToList();
        ImageDamage.UniqueBy(sockets, s => s.Usk.Ino, path, "inode", i => $"the unix socket with id {sockets[i].Id}");
        return index;
    }

    /// <summary>Every reference of a process's images to a file, checked against files.img.</summary>
    public static void CheckReferences(string directory, ProcessImages process, string fdinfoPath, IReadOnlyDictionary<uint, FileEntry> files)
    {
        string filesPath = Path.Combine(directory, ImageTypes.Files.FileName(null));
        var fds = process.FileDescriptors;
        ImageDamage.UniqueBy(fds, d => d.Fd, fdinfoPath, "descriptor number", ImageDamage.Entry);
        uint nrOpen = KernelFacts.NrOpen;
        for (int i = 0; i < fds.Count; i++)
        {
            var fd = fds[i];
            if (fd.Fd > int.MaxValue)
            {
                throw ImageDamage.In(fdinfoPath, $"{ImageDamage.Entry(i)}: descriptor {fd.Fd} is beyond any descriptor number Linux gives ({int.MaxValue}).");
            }
            if (fd.Fd >= nrOpen)
            {
                // Possible on a kernel whose fs.nr_open was raised (up to 2^31), not on this one: the number cannot be made.
                throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                    $"{fdinfoPath}: {ImageDamage.Entry(i)}: descriptor {fd.Fd} is beyond what this kernel allows a process (fs.nr_open = {nrOpen}).", fdinfoPath,
                    "Raise fs.nr_open (sysctl) above the descriptor number, or restore on the machine the checkpoint was taken on.");
            }
            var file = Referenced(files, fd.Id, fdinfoPath, $"{ImageDamage.Entry(i)} (descriptor {fd.Fd})", filesPath);
            if (file.Type != fd.Type)
            {
                throw ImageDamage.In(fdinfoPath, $"{ImageDamage.Entry(i)} (descriptor {fd.Fd}): it is a {fd.Type} descriptor, but file {fd.Id} of files.img is a {file.Type} file.");
            }
        }
        string pid = process.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string fsPath = Path.Combine(directory, ImageTypes.Fs.FileName(pid));
        Regular(files, process.Fs.CwdId, fsPath, "entries[0].cwd_id (the working directory)", filesPath);
        Regular(files, process.Fs.RootId, fsPath, "entries[0].root_id (the root directory)", filesPath);
        string mmPath = Path.Combine(directory, ImageTypes.Mm.FileName(pid));
        const string Exe = "entries[0].exe_file_id (the executable)";
        if (Referenced(files, process.Mm.ExeFileId, mmPath, Exe, filesPath).Type == FdTypes.Memfd)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"{mmPath}: {Exe} names file {process.Mm.ExeFileId}, a memfd; CriuPS restores executables that are files with a path.", mmPath);
        }
        Regular(files, process.Mm.ExeFileId, mmPath, Exe, filesPath);
        var vmas = process.Mm.Vmas;
        for (int i = 0; i < vmas.Count; i++)
        {
            // memfds and shared anonymous memory name their objects by other ids, checked where they are made.
            var status = (VmaStatus)vmas[i].Status;
            if ((status & (VmaStatus.FilePrivate | VmaStatus.FileShared)) != 0 && (status & (VmaStatus.Memfd | VmaStatus.AnonShared)) == 0)
            {
                Regular(files, vmas[i].Shmid, mmPath, $"entries[0].vmas[{i}] ({vmas[i].Start:x}-{vmas[i].End:x}, a file mapping)", filesPath);
            }
        }
    }

    private static FileEntry Referenced(IReadOnlyDictionary<uint, FileEntry> files, ulong id, string path, string where, string filesPath) =>
        id <= uint.MaxValue && files.TryGetValue((uint)id, out var file)
            ? file
            : throw ImageDamage.In(path, $"{where} names file {id}, which {filesPath} does not have.");

    private static void Regular(IReadOnlyDictionary<uint, FileEntry> files, ulong id, string path, string where, string filesPath)
    {
        var file = Referenced(files, id, path, where, filesPath);
        if (file.Type != FdTypes.Reg)
        {
            throw ImageDamage.In(path, $"{where} names file {id}, a {file.Type} file; it must be a file or directory with a path (REG).");
        }
    }

    /// <summary>
    /// The member of a file entry that describes a file of each kind (files.proto: the member matching type is set), by
    /// its name in crit's JSON.
    /// </summary>
    private static readonly Dictionary<FdTypes, (string Name, Func<FileEntry, IFileDescription?> Of)> Descriptions = new()
    {
        [FdTypes.Reg] = ("reg", f => f.Reg),
        [FdTypes.Pipe] = ("pipe", f => f.Pipe),
        [FdTypes.Fifo] = ("fifo", f => f.Fifo),
        [FdTypes.Inetsk] = ("isk", f => f.Isk),
        [FdTypes.Unixsk] = ("usk", f => f.Usk),
        [FdTypes.Eventfd] = ("efd", f => f.Efd),
        [FdTypes.Eventpoll] = ("epfd", f => f.Epfd),
        [FdTypes.Inotify] = ("ify", f => f.Ify),
        [FdTypes.Signalfd] = ("sgfd", f => f.Sgfd),
        [FdTypes.Packetsk] = ("psk", f => f.Psk),
        [FdTypes.Tty] = ("tty", f => f.Tty),
        [FdTypes.Fanotify] = ("ffy", f => f.Ffy),
        [FdTypes.Netlinksk] = ("nlsk", f => f.Nlsk),
        [FdTypes.Ns] = ("nsf", f => f.Nsf),
        [FdTypes.Tunf] = ("tunf", f => f.Tunf),
        [FdTypes.Ext] = ("ext", f => f.Ext),
        [FdTypes.Timerfd] = ("tfd", f => f.Tfd),
        [FdTypes.Memfd] = ("memfd", f => f.Memfd),
        [FdTypes.Bpfmap] = ("bpf", f => f.Bpf),
        [FdTypes.Pidfd] = ("pidfd", f => f.Pidfd),
    };
}
