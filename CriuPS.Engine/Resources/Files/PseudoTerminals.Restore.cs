using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// The restore of the tree's pseudo-terminals: each pair whose master the image holds is made again, all at once
/// when the first terminal is opened, with its saved index (ptmx hands out the lowest free index: it is opened until
/// it gives the saved one, the lower ones held meanwhile, as CRIU does), then its slave descriptions, settings,
/// window size, queued bytes, packet mode, exclusive mode and lock, in an order that lets each take effect. The
/// engine keeps a slave description of each pair for its session (<see cref="ControllingTerminals"/>).
/// </summary>
internal sealed partial class PseudoTerminals : IDisposable
{
    private readonly Dictionary<uint, TtyInfoEntry> infos = new();
    private readonly Dictionary<uint, byte[]> queued = new();
    private readonly Dictionary<int, Pair> pairs = new();
    private readonly Dictionary<uint, FileDescriptor> opened = new();
    private HashSet<int> sessionLeaders = new();
    private bool loaded, created;

    /// <summary>A pair made again: its index, saved master device, and the engine's own description of its slave.</summary>
    public sealed record Pair(int Index, TtyInfoEntry Master, FileDescriptor Slave);

    /// <summary>The session's terminals, read from the images on first use.</summary>
    public static PseudoTerminals Of(RestoreSession session)
    {
        var state = session.State<PseudoTerminals>();
        if (!state.loaded)
        {
            state.Load(session);
        }
        return state;
    }

    private void Load(RestoreSession session)
    {
        foreach (var entry in session.Images.Entries(ImageTypes.TtyInfo))
        {
            var info = (TtyInfoEntry)entry.Message;
            infos[info.Id] = info;
        }
        foreach (var entry in session.Images.Entries(ImageTypes.TtyData))
        {
            var data = (TtyDataEntry)entry.Message;
            queued[data.TtyId] = data.Data.ToByteArray();
        }
        sessionLeaders = session.Images.Processes.Where(p => p.Pstree.Sid == p.Pstree.Pid).Select(p => p.Pid).ToHashSet();
        loaded = true;
    }

    /// <summary>Whether the file is /dev/tty opened on one of the image's pairs: only a process it controls can open it.</summary>
    public bool IsControllingTerminalOfPair(FileEntry file) => Info(file).Type == TtyType.Ctty && PairOf(file) is not null;

    /// <summary>The description of a terminal of the image's pairs (made with them), or null for a shell job's terminal.</summary>
    public FileDescriptor? Open(RestoreSession session, FileEntry file)
    {
        if (PairOf(file) is null)
        {
            return null;
        }
        CreatePairs(session);
        return opened.Remove(file.Id, out var description) ? description : throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
            $"{Path.Combine(session.Images.Directory, "files.img")}: terminal file {file.Id} is opened twice.", session.Images.Directory);
    }

    /// <summary>The pairs whose slave controlled a session, with the leader of that session (made on first use).</summary>
    public IEnumerable<Pair> ControllingPairs(RestoreSession session)
    {
        CreatePairs(session);
        return pairs.Values.Where(p => p.Master.Sid != 0);
    }

    /// <summary>The /dev/tty descriptions opened on the terminal of session <paramref name="sid"/>.</summary>
    public IEnumerable<FileEntry> ControllingTerminalFiles(RestoreSession session, uint sid) =>
        session.Images.Files.Values.Where(f => f.Type == FdTypes.Tty && f.Tty is not null && IsControllingTerminalOfPair(f) && Info(f).Sid == sid);

    private TtyInfoEntry Info(FileEntry file) =>
        infos.TryGetValue(file.Tty.TtyInfoId, out var info) ? info : throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
            $"tty-info.img has no terminal {file.Tty.TtyInfoId}, which terminal file {file.Id} of files.img refers to.", file.Id);

    // The index of the image's pair a terminal file belongs to; null for a shell job's terminal (a slave whose master
    // was not saved, /dev/tty of such a terminal, a console...).
    private int? PairOf(FileEntry file)
    {
        var info = Info(file);
        if (info.Type == TtyType.Pty && info.Pty is not null)
        {
            return infos.ContainsKey(TerminalDevice.MasterInfoId((int)info.Pty.Index)) ? (int)info.Pty.Index : null;
        }
        if (info.Type == TtyType.Ctty && info.Sid != 0 && sessionLeaders.Contains((int)info.Sid))
        {
            var master = infos.Values.FirstOrDefault(m => IsMaster(m) && m.Sid == info.Sid);
            return master is null ? null : (int)master.Pty.Index;
        }
        return null;
    }

    private static bool IsMaster(TtyInfoEntry info) => info.Type == TtyType.Pty && info.Pty is not null && (info.Id & 1) == 1;

    private void CreatePairs(RestoreSession session)
    {
        if (created)
        {
            return;
        }
        created = true;
        var files = session.Images.Files.Values.Where(f => f.Type == FdTypes.Tty && f.Tty is not null).ToList();
        foreach (var master in infos.Values.Where(IsMaster).OrderBy(m => m.Pty.Index))
        {
            Create(session, master, files);
        }
    }

    private void Create(RestoreSession session, TtyInfoEntry masterInfo, List<FileEntry> files)
    {
        int index = (int)masterInfo.Pty.Index;
        infos.TryGetValue(TerminalDevice.SlaveInfoId(index), out var slaveInfo);
        var masterFile = files.FirstOrDefault(f => f.Tty.TtyInfoId == masterInfo.Id) ?? throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
            $"files.img has no descriptor of the master of /dev/pts/{index}, which tty-info.img describes.", session.Images.Directory);
        var master = OpenMaster(session, index, (int)masterFile.Tty.Flags);
        opened[masterFile.Id] = master;
        Terminal.SetPtyLock(master, false);
        string slavePath = $"/dev/pts/{index}";
        var slave = FileDescriptor.Open(slavePath, O.RDWR | O.NOCTTY);
        pairs[index] = new Pair(index, masterInfo, slave);
        var slaveFiles = files.Where(f => f.Tty.TtyInfoId == TerminalDevice.SlaveInfoId(index)).ToList();
        foreach (var file in slaveFiles)
        {
            opened[file.Id] = OpenWithFlags(slavePath, (int)file.Tty.Flags);
        }

        ApplySettings(master, masterInfo);
        if (slaveInfo is not null)
        {
            ApplySettings(slave, slaveInfo);
            if (slaveInfo.HasUid && slaveInfo.HasGid)
            {
                Inode.Fchown(slave, slaveInfo.Uid, slaveInfo.Gid);
            }
        }
        if (slaveFiles.Count > 0 && session.Images.Files.TryGetValue(slaveFiles[0].Tty.RegfId, out var node) && node.Reg is { HasMode: true })
        {
            Inode.Fchmod(slave, node.Reg.Mode & 0xFFF);
        }
        if (masterInfo.Winsize is not null)
        {
            Terminal.SetWindowSize(master, TerminalSettings.FromEntry(masterInfo.Winsize));
        }
        PutQueued(session, index, TerminalDevice.SlaveInfoId(index), slave, master);
        PutQueued(session, index, masterInfo.Id, master, slave);
        if (masterInfo.PacketMode)
        {
            Terminal.SetPacketMode(master, true);
        }
        // Exclusive mode belongs to each end (TIOCEXCL sets it on the tty the descriptor reaches).
        Terminal.SetExclusive(master, masterInfo.Exclusive);
        if (slaveInfo is not null)
        {
            Terminal.SetExclusive(slave, slaveInfo.Exclusive);
        }
        // Last: a locked slave cannot be opened.
        if (masterInfo.Locked)
        {
            Terminal.SetPtyLock(master, true);
        }
        session.Log.Detail($"/dev/pts/{index} made again: {slaveFiles.Count} slave description(s), session {masterInfo.Sid}");
    }

    /// <summary>Opens the master of a new pair with the saved index, or fails when another terminal has that index.</summary>
    private static FileDescriptor OpenMaster(RestoreSession session, int index, int flags)
    {
        var lower = new List<FileDescriptor>();
        try
        {
            while (true)
            {
                var master = OpenWithFlags("/dev/ptmx", flags);
                int got = Terminal.PtyNumber(master);
                if (got == index)
                {
                    return master;
                }
                lower.Add(master);
                if (got > index)
                {
                    throw new CheckpointException(CheckpointErrorKind.TerminalInUse,
                        $"The pseudo-terminal /dev/pts/{index} that the restored processes had is in use by another program.",
                        $"/dev/pts/{index}", $"Close what uses /dev/pts/{index} (ls -l /proc/*/fd | grep pts/{index}), then restore again.");
                }
            }
        }
        finally
        {
            foreach (var held in lower)
            {
                held.Dispose();
            }
        }
    }

    // The saved access mode and status flags; never the controlling terminal of the engine.
    private static FileDescriptor OpenWithFlags(string path, int flags)
    {
        var description = FileDescriptor.Open(path, (flags & O.ACCMODE) | O.NOCTTY);
        Fcntl.Call(description, Fcntl.F_SETFL, flags & (O.NONBLOCK | O.APPEND | O.ASYNC));
        return description;
    }

    // Settings first, then the locked bits, which would otherwise keep some of them from taking effect.
    private static void ApplySettings(FileDescriptor end, TtyInfoEntry info)
    {
        if (info.Termios is not null)
        {
            Terminal.SetAttributes(end, TerminalSettings.FromEntry(info.Termios));
        }
        if (info.TermiosLocked is not null)
        {
            Terminal.SetLockedAttributes(end, TerminalSettings.FromEntry(info.TermiosLocked));
        }
    }

    private void PutQueued(RestoreSession session, int index, uint infoId, FileDescriptor end, FileDescriptor peer)
    {
        if (queued.TryGetValue(infoId, out var data) && data.Length > 0)
        {
            int lost = TerminalQueue.Put(end, peer, data, master: (infoId & 1) == 1);
            if (lost > 0)
            {
                session.Log.Warning($"/dev/pts/{index}: {lost} of the {data.Length} bytes queued for its {((infoId & 1) == 1 ? "master" : "slave")} found no room.");
            }
        }
    }

    public void Dispose()
    {
        foreach (var description in opened.Values.Concat(pairs.Values.Select(p => p.Slave)))
        {
            description.Dispose();
        }
        opened.Clear();
        pairs.Clear();
    }
}
