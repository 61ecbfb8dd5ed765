using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// Terminals (tty_file_entry, tty-info.img), for shell jobs only, as CRIU's --shell-job: a terminal cannot be
/// recreated, so on restore every saved terminal descriptor is connected to the caller's own terminal.
/// </summary>
internal sealed class Terminals : FileKind
{
    public override FdTypes Type => FdTypes.Tty;

    public override bool Handles(DescriptorProbe probe) => probe.Status.Type == FileStatus.CharDevice && IsTerminal(probe.Status);

    public override string? Problem(DescriptorProbe probe, DumpOptions options) =>
        options.ShellJob ? null : $"fd {probe.Fd}: terminal {probe.Link} (use -ShellJob)";

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Tty.Flags, file.Tty.Fown);

    private const uint PtySlaveFirstMajor = 136, PtySlaveLastMajor = 143, TtyMajor = 4, TtyAuxMajor = 5;

    public static bool IsTerminal(FileStatus status)
    {
        uint major = status.RawDeviceMajor;
        uint minor = status.RawDeviceMinor;
        return (major >= PtySlaveFirstMajor && major <= PtySlaveLastMajor)
            || major == TtyMajor
            || (major == TtyAuxMajor && minor is 0 or 1);
    }

    public override FileEntry Dump(DescriptorDump dump)
    {
        var session = dump.Session;
        var status = dump.Probe.Status;
        int pid = dump.Probe.Pid;
        uint id = dump.Id;
        uint major = status.RawDeviceMajor;
        uint minor = status.RawDeviceMinor;
        var type = major is >= PtySlaveFirstMajor and <= PtySlaveLastMajor ? TtyType.Pty
            : major == TtyAuxMajor && minor == 0 ? TtyType.Ctty
            : major == TtyAuxMajor ? TtyType.Console
            : minor < 64 ? TtyType.Vt : TtyType.Serial;
        uint infoId = (uint)status.RawDevice;
        if (!session.TtyInfos.Any(t => t.Id == infoId))
        {
            var stat = ProcStat.Read(pid);
            var tty = new TtyInfoEntry
            {
                Id = infoId,
                Type = type,
                Locked = false,
                Exclusive = false,
                PacketMode = false,
                Sid = (uint)stat.Session,
                Pgrp = (uint)stat.ProcessGroup,
                Rdev = (uint)status.RawDevice,
            };
            if (type == TtyType.Pty)
            {
                tty.Pty = new TtyPtyEntry { Index = minor + (major - PtySlaveFirstMajor) * 256 };
            }
            session.TtyInfos.Add(tty);
        }
        return new FileEntry
        {
            Type = FdTypes.Tty,
            Id = id,
            Tty = new TtyFileEntry { Id = id, TtyInfoId = infoId, Flags = dump.Flags, Fown = dump.Owner },
        };
    }

    /// <summary>A new description of the caller's terminal, opened with the saved flags.</summary>
    public override FileDescriptor Open(RestoreSession session, FileEntry file)
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
