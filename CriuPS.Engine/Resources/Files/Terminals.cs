using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// Terminals (tty_file_entry, tty-info.img, tty-data.img). A pseudo-terminal pair whose master the tree holds is the
/// tree's own: both ends are saved with their settings and queued bytes and recreated on restore
/// (<see cref="PseudoTerminalDump"/>, <see cref="PseudoTerminalRestore"/>), and so is /dev/tty opened on one
/// (<see cref="ControllingTerminals"/>). Any other terminal belongs to a shell job, as CRIU's --shell-job: it cannot be
/// recreated, so on restore every such descriptor is connected to the caller's own terminal.
/// </summary>
internal sealed class Terminals : FileKind
{
    public override FdTypes Type => FdTypes.Tty;

    public override bool Handles(DescriptorProbe probe) => TerminalDevice.IsTerminal(probe.Status);

    // Pseudo-terminals and /dev/tty are the tree's own or not depending on the rest of the tree (TerminalTopology).
    public override string? Problem(DescriptorProbe probe, DumpOptions options) =>
        options.ShellJob || TerminalDevice.Of(probe.Status, () => -1).Role is TerminalRole.PtyMaster or TerminalRole.PtySlave or TerminalRole.ControllingTerminal
            ? null
            : TerminalTopology.ShellJobProblem(probe);

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
        uint infoId = session.State<PseudoTerminalDump>().Record(dump, device) ?? RecordShellJobTerminal(dump, device);
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
        if (!session.Options.ShellJob)
        {
            throw new CheckpointException(CheckpointErrorKind.ShellJobRequired,
                $"Process {dump.Probe.Pid} has {TerminalTopology.ShellJobProblem(dump.Probe)}, which CriuPS cannot save.", dump.Probe.Pid);
        }
        uint id = device.InfoId;
        if (!session.TtyInfos.Any(t => t.Id == id))
        {
            var stat = ProcStat.Read(dump.Probe.Pid);
            session.TtyInfos.Add(TerminalInfo.Read(id, device, dump.Probe, dump.Copy, stat.Session, stat.ProcessGroup));
        }
        return id;
    }

    public override bool OpensInRestoredProcess(RestoreSession session, FileEntry file) =>
        PseudoTerminalRestore.Of(session).IsControllingTerminalOfPair(file);

    public override FileDescriptor Open(RestoreSession session, FileEntry file) =>
        PseudoTerminalRestore.Of(session).Open(session, file) ?? OpenShellJobTerminal(session, file);

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
        int ours = new[] { 0, 1, 2 }.FirstOrDefault(fd => LibC.isatty(fd) == 1, -1);
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
