using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// Terminals (tty_file_entry, tty-info.img, tty-data.img). A pseudo-terminal pair whose master the tree holds is the
/// tree's own: both ends are saved with their settings and queued bytes and recreated on restore
/// (<see cref="PseudoTerminals"/>, both directions), and so is /dev/tty opened on one
/// (<see cref="ControllingTerminals"/>). The console and the virtual consoles opened as plain descriptors (not the
/// controlling terminal of the process holding them) are devices of the machine, as CRIU sees them: saved without a
/// switch and opened again by their path, refused at restore, naming the device, where it cannot be opened (a
/// container has neither). Any other terminal belongs to a shell job, as CRIU's --shell-job: it cannot be recreated,
/// so on restore every such descriptor is connected to the caller's own terminal.
/// </summary>
internal sealed class Terminals : FileKind
{
    public override FdTypes Type => FdTypes.Tty;

    public override bool Handles(DescriptorProbe probe) => TerminalDevice.IsTerminal(probe.Status);

    // Pseudo-terminals and /dev/tty are the tree's own or not depending on the rest of the tree (TerminalTopology).
    public override string? Problem(DescriptorProbe probe, DumpOptions options) =>
        options.ShellJob || TerminalDevice.Of(probe.Status, () => -1).Role is TerminalRole.PtyMaster or TerminalRole.PtySlave or TerminalRole.ControllingTerminal
            || IsMachineTerminal(probe)
            ? null
            : TerminalTopology.ShellJobProblem(probe);

    /// <summary>The console or a virtual console, open in a process it is not the controlling terminal of.</summary>
    private static bool IsMachineTerminal(DescriptorProbe probe)
    {
        if (TerminalDevice.Of(probe.Status, () => -1).Role is not (TerminalRole.Console or TerminalRole.VirtualConsole))
        {
            return false;
        }
        // tty_nr of /proc/PID/stat: the controlling terminal's device, minor bits split around the major.
        int tty = ProcStat.Read(probe.Pid).TtyNumber;
        uint major = (uint)(tty >> 8) & 0xfff, minor = (uint)(tty & 0xff) | ((uint)(tty >> 12) & 0xfff00);
        return major != probe.Status.RawDeviceMajor || minor != probe.Status.RawDeviceMinor;
    }

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Tty.Flags, file.Tty.Fown);

    public override FileEntry Dump(DescriptorDump dump)
    {
        var session = dump.Session;
        var device = TerminalDevice.Of(dump.Probe.Status, () => Terminal.PtyNumber(dump.Copy));
        if (device.IsPty && device.Index > TerminalDevice.MaxPtyIndex)
        {
            // Its tty_info id would be that of another kind of terminal (the console's is 2 * 1002).
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"Process {dump.Probe.Pid} has fd {dump.Probe.Fd}: pseudo-terminal /dev/pts/{device.Index}, whose index is above {TerminalDevice.MaxPtyIndex}, the highest an image can hold.",
                dump.Probe.Pid);
        }
        uint infoId = session.State<PseudoTerminals>().Record(dump, device) ?? RecordShellJobTerminal(dump, device);
        uint regId = session.Files.NewId();
        session.Files.Add(RegularFiles.Entry(regId, dump.Probe.Link, (int)dump.Flags, 0, dump.Probe.Status, dump.Owner));
        return new FileEntry
        {
            Type = FdTypes.Tty,
            Id = dump.Id,
            Tty = new TtyFileEntry { Id = dump.Id, TtyInfoId = infoId, Flags = dump.Flags, Fown = dump.Owner, RegfId = regId },
        };
    }

    private static uint RecordShellJobTerminal(DescriptorDump dump, TerminalDevice device)
    {
        var session = dump.Session;
        bool machine = IsMachineTerminal(dump.Probe);
        if (!session.Options.ShellJob && !machine)
        {
            throw new CheckpointException(CheckpointErrorKind.ShellJobRequired,
                $"Process {dump.Probe.Pid} has {TerminalTopology.ShellJobProblem(dump.Probe)}, which CriuPS cannot save.", dump.Probe.Pid);
        }
        uint id = device.InfoId;
        if (!session.TtyInfos.Any(t => t.Id == id))
        {
            var stat = ProcStat.Read(dump.Probe.Pid);
            // A machine's terminal controls no session of the tree: no session, no foreground group.
            session.TtyInfos.Add(machine
                ? TerminalInfo.Read(id, device, dump.Probe, dump.Copy, 0, 0)
                : TerminalInfo.Read(id, device, dump.Probe, dump.Copy, stat.Session, stat.ProcessGroup));
        }
        return id;
    }

    public override bool OpensInRestoredProcess(RestoreSession session, FileEntry file) =>
        PseudoTerminals.Of(session).IsControllingTerminalOfPair(file);

    public override FileDescriptor Open(RestoreSession session, FileEntry file) =>
        PseudoTerminals.Of(session).Open(session, file) ?? OpenMachineTerminal(session, file) ?? OpenShellJobTerminal(session, file);

    /// <summary>The console or virtual console a process had open, opened again by its path; null for other terminals.</summary>
    private static FileDescriptor? OpenMachineTerminal(RestoreSession session, FileEntry file)
    {
        var info = session.Images.Entries(ImageTypes.TtyInfo).Select(e => (TtyInfoEntry)e.Message).FirstOrDefault(i => i.Id == file.Tty.TtyInfoId);
        if (info is not { Type: TtyType.Console or TtyType.Vt, Sid: 0 } || !session.Images.Files.TryGetValue(file.Tty.RegfId, out var path) || path.Reg is null)
        {
            return null;
        }
        string device = path.Reg.Name;
        if (device != "/dev/console" && !System.Text.RegularExpressions.Regex.IsMatch(device, "^/dev/tty[0-9]+$"))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"files.img: the console or virtual console of file {file.Id} is named '{device}'.", session.Images.Directory);
        }
        int flags = (int)file.Tty.Flags & (O.ACCMODE | O.NONBLOCK | O.APPEND);
        string what = $"The process had {device} open ({(info.Type == TtyType.Console ? "the console" : "a virtual console")})";
        var opened = FileDescriptor.TryOpen(device, flags | O.NOCTTY, out int errno) ?? throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
            $"{what}, which cannot be opened here: {Errno.Describe(errno)} (a container has no console or virtual consoles).", device);
        // Whatever answers to the name must be that device, not a file put in its place.
        if (FileStatus.Of(opened).RawDevice != info.Rdev)
        {
            opened.Dispose();
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible, $"{what}, and {device} here is another device.", device);
        }
        return opened;
    }

    /// <summary>A new description of the caller's terminal, opened with the saved flags.</summary>
    private static FileDescriptor OpenShellJobTerminal(RestoreSession session, FileEntry file)
    {
        if (!session.Options.ShellJob)
        {
            throw new CheckpointException(
                CheckpointErrorKind.ShellJobRequired,
                "The process was attached to a terminal; it can only be restored as a shell job, connected to your terminal.",
                session.Options.ImagePath,
                "Run Restore-Process with -ShellJob from a terminal.");
        }
        int ours = new[] { 0, 1, 2 }.FirstOrDefault(Terminal.IsTerminal, -1);
        string path = ours >= 0 ? ProcFiles.ReadLink($"/proc/self/fd/{ours}") : "/dev/tty";
        int flags = (int)file.Tty.Flags & (O.ACCMODE | O.NONBLOCK | O.APPEND);
        var fd = FileDescriptor.TryOpen(path, flags | O.NOCTTY, out int errno);
        return fd ?? throw new CheckpointException(
            CheckpointErrorKind.ShellJobRequired,
            $"A shell job needs a terminal to attach to, and this session has none ({path}: {Errno.Describe(errno)}).",
            session.Options.ImagePath,
            "Run Restore-Process -ShellJob from an interactive terminal.");
    }
}
