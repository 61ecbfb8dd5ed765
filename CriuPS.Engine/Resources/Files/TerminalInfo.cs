using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// One terminal device of an image (tty_info_entry, tty-info.img), read through the engine's copy of a description of
/// it: settings, locked settings, window size, exclusive mode, and for a master the state of its pair (slave locked,
/// packet mode).
/// </summary>
internal static class TerminalInfo
{
    public static TtyInfoEntry Read(uint id, TerminalDevice device, DescriptorProbe probe, FileDescriptor copy, int session, int foregroundGroup)
    {
        var status = probe.Status;
        var info = new TtyInfoEntry
        {
            Id = id,
            Type = device.Type,
            Sid = (uint)session,
            Pgrp = (uint)foregroundGroup,
            Rdev = (uint)status.RawDevice,
            Dev = (uint)status.Device,
            Uid = status.Uid,
            Gid = status.Gid,
            Locked = false,
            Exclusive = false,
            PacketMode = false,
        };
        if (device.IsPty)
        {
            info.Pty = new TtyPtyEntry { Index = (uint)device.Index };
        }
        try
        {
            info.Termios = TerminalSettings.ToEntry(Terminal.GetAttributes(copy));
            info.TermiosLocked = TerminalSettings.ToEntry(Terminal.GetLockedAttributes(copy));
            info.Winsize = TerminalSettings.ToEntry(Terminal.GetWindowSize(copy));
            info.Exclusive = Terminal.IsExclusive(copy);
            if (device.Role == TerminalRole.PtyMaster)
            {
                info.Locked = Terminal.IsPtyLocked(copy);
                info.PacketMode = Terminal.IsPacketMode(copy);
            }
        }
        catch (NativeException e) when (e.Errno == Errno.EIO)
        {
            // The kernel answers EIO on a terminal that was hung up: for a slave, its master is gone.
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"Process {probe.Pid} has fd {probe.Fd}: terminal {probe.Link}, which was hung up (the other end of it is closed); CriuPS cannot save a hung-up terminal.",
                probe.Pid, "Close the descriptor in the process, or checkpoint it before its terminal goes.");
        }
        return info;
    }
}
