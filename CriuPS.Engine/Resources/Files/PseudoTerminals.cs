using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Logging;
using CriuPS.Native.Interop;
using Google.Protobuf;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// The dump of the tree's own pseudo-terminals (pairs whose master it holds) and of /dev/tty opened on them: one
/// tty_info per end of each pair with the session and foreground group of its slave, and the bytes queued in either
/// direction, taken once everything else is saved and put back if the processes go on. The restore is beside it
/// (PseudoTerminals.Restore.cs); each session keeps one instance, whose fields of its own direction it uses.
/// </summary>
internal sealed partial class PseudoTerminals
{
    private TerminalTopology? topology;
    private readonly HashSet<uint> recorded = new();
    private readonly List<int> controllingPairs = new();

    /// <summary>The engine's copy of each end whose queue is saved, by tty_info id, and what was taken from it.</summary>
    private readonly SortedDictionary<uint, (FileDescriptor Copy, byte[]? Taken)> ends = new();

    /// <summary>
    /// The tty_info id of a terminal the tree owns (a pair whose master it holds, or /dev/tty opened on one), recording
    /// its device the first time; null for a shell job's terminal.
    /// </summary>
    public uint? Record(DescriptorDump dump, TerminalDevice device)
    {
        var topology = Topology(dump.Session);
        int index = device.Role switch
        {
            TerminalRole.PtyMaster or TerminalRole.PtySlave => device.Index,
            TerminalRole.ControllingTerminal => TerminalDevice.SlaveIndexOfControllingTerminal(Terminal.RealDevice(dump.Copy)) ?? -1,
            _ => -1,
        };
        if (index < 0 || !topology.HasMaster(index))
        {
            return null;
        }
        var controlled = topology.SessionOf(index);
        uint id = device.Role == TerminalRole.ControllingTerminal ? ControllingTerminalId(dump, index, controlled) : device.InfoId;
        if (recorded.Add(id))
        {
            if (device.Role == TerminalRole.PtyMaster)
            {
                CheckSessionInTree(dump, index, controlled);
            }
            dump.Session.TtyInfos.Add(TerminalInfo.Read(id, device, dump.Probe, dump.Copy, controlled?.Session ?? 0, controlled?.ForegroundGroup ?? 0));
            if (device.IsPty)
            {
                ends[id] = (Duplicate(dump.Copy), null);
            }
        }
        return id;
    }

    private TerminalTopology Topology(DumpSession session) =>
        topology ??= TerminalTopology.Of(session.Processes.SelectMany(p => DescriptorProbe.All(p.Pid)), session.Processes.Select(p => p.Pid));

    // /dev/tty of each pair has an entry of its own (CRIU's one /dev/tty entry per image first).
    private uint ControllingTerminalId(DescriptorDump dump, int index, TerminalTopology.ControlledSession? controlled)
    {
        if (controlled is null)
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"Process {dump.Probe.Pid} has fd {dump.Probe.Fd}: /dev/tty opened on /dev/pts/{index}, which controls no session of the tree any more; CriuPS cannot open it again.",
                dump.Probe.Pid);
        }
        if (!controllingPairs.Contains(index))
        {
            controllingPairs.Add(index);
        }
        return TerminalDevice.ControllingTerminalInfoId(controllingPairs.IndexOf(index));
    }

    // A slave that controls a session led outside the tree: the restore could not give that session its terminal back.
    private static void CheckSessionInTree(DescriptorDump dump, int index, TerminalTopology.ControlledSession? controlled)
    {
        int session = Terminal.Session(dump.Copy);
        if (session != 0 && controlled is null)
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"Process {dump.Probe.Pid} holds the master of /dev/pts/{index} (fd {dump.Probe.Fd}), the controlling terminal of session {session}, whose leader is not in the tree.",
                dump.Probe.Pid, $"Checkpoint the tree of process {session} instead.");
        }
    }

    private static FileDescriptor Duplicate(FileDescriptor copy) => new(Fcntl.Call(copy, Fcntl.F_DUPFD_CLOEXEC, 3));

    /// <summary>
    /// Takes the bytes queued in every saved pair, each slave's before its master's (reading the slave lets in what its
    /// master was sent, which may echo to the master), into tty-data.img.
    /// </summary>
    public static void SaveQueuedData(DumpSession session)
    {
        var ptys = session.State<PseudoTerminals>();
        foreach (uint id in ptys.ends.Keys.OrderBy(id => id >> 1).ThenBy(id => id & 1).ToList())
        {
            var copy = ptys.ends[id].Copy;
            bool master = (id & 1) == 1;
            // A master in packet mode would give a status byte before the data: read it plainly meanwhile.
            bool packet = master && Terminal.IsPacketMode(copy);
            if (packet)
            {
                Terminal.SetPacketMode(copy, false);
            }
            byte[] taken;
            try
            {
                taken = TerminalQueue.Take(copy, master);
            }
            finally
            {
                if (packet)
                {
                    Terminal.SetPacketMode(copy, true);
                }
            }
            ptys.ends[id] = (copy, taken);
            if (taken.Length > 0)
            {
                session.AddImageEntry(ImageTypes.TtyData, null, new TtyDataEntry { TtyId = id, Data = ByteString.CopyFrom(taken) });
                session.Log.Detail($"/dev/pts/{id >> 1}: {taken.Length} bytes queued for the {(master ? "master" : "slave")}");
            }
        }
    }

    /// <summary>
    /// Ends the dump's hold on the terminals: when the processes go on (-LeaveRunning, or a failed dump), the bytes taken
    /// go back into their queues first.
    /// </summary>
    public static void End(DumpSession session, bool putBack)
    {
        var ptys = session.State<PseudoTerminals>();
        try
        {
            if (putBack)
            {
                ptys.PutBack(session.Log);
            }
        }
        finally
        {
            foreach (var (copy, _) in ptys.ends.Values)
            {
                copy.Dispose();
            }
            ptys.ends.Clear();
        }
    }

    private void PutBack(EngineLog log)
    {
        foreach (var (id, (copy, taken)) in ends)
        {
            if (taken is not { Length: > 0 })
            {
                continue;
            }
            var peer = ends.TryGetValue(id ^ 1, out var other) ? other.Copy : null;
            int lost = TerminalQueue.Put(copy, peer, taken, master: (id & 1) == 1);
            if (lost > 0)
            {
                log.Warning($"/dev/pts/{id >> 1}: {lost} of the {taken.Length} bytes queued for its {((id & 1) == 1 ? "master" : "slave")} found no room when they were put back.");
            }
        }
    }
}
