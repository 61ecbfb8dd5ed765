using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// The pseudo-terminals of a process tree: whose masters it holds (a pair whose master is in the tree is the tree's
/// own, saved and recreated with it), and which of them controls which of its sessions. A terminal whose master is
/// outside the tree is a shell job's: it can only be replaced by the restoring session's terminal.
/// </summary>
internal sealed class TerminalTopology
{
    private readonly HashSet<int> masters = new();
    private readonly Dictionary<int, ControlledSession> sessions = new();

    /// <summary>The session a pseudo-terminal controls: its leader's pid and the terminal's foreground group (0 for none).</summary>
    public sealed record ControlledSession(int Session, int ForegroundGroup);

    /// <summary>Reads it from the descriptors of the tree's live processes and their /proc/PID/stat.</summary>
    public static TerminalTopology Of(IEnumerable<DescriptorProbe> descriptors, IEnumerable<int> pids)
    {
        var topology = new TerminalTopology();
        foreach (var probe in descriptors.Where(p => TerminalDevice.IsTerminal(p.Status)))
        {
            var device = TerminalDevice.Of(probe.Status, () => MasterIndex(probe));
            if (device.Role == TerminalRole.PtyMaster && device.Index >= 0)
            {
                topology.masters.Add(device.Index);
            }
        }
        foreach (int pid in pids)
        {
            var stat = ProcStat.Read(pid);
            if (stat.Session == pid && TerminalDevice.SlaveIndexOfControllingTerminal(stat.TtyNumber) is int index)
            {
                topology.sessions[index] = new ControlledSession(pid, Math.Max(stat.TerminalForegroundGroup, 0));
            }
        }
        return topology;
    }

    // The index of a master as fdinfo shows it (tty-index), -1 when the descriptor was closed meanwhile.
    private static int MasterIndex(DescriptorProbe probe)
    {
        try
        {
            return int.TryParse(FdInfo.Read(probe.Pid, probe.Fd).Get("tty-index"), out int index) ? index : -1;
        }
        catch (IOException)
        {
            return -1;
        }
    }

    /// <summary>Whether the tree holds the master of pseudo-terminal <paramref name="index"/>.</summary>
    public bool HasMaster(int index) => masters.Contains(index);

    /// <summary>The session of the tree that pseudo-terminal <paramref name="index"/> controls, if any.</summary>
    public ControlledSession? SessionOf(int index) => sessions.GetValueOrDefault(index);

    /// <summary>
    /// The terminals of the tree that only a shell job can have (slaves whose master is outside the tree, /dev/tty of
    /// such a terminal), each as "fd N: terminal PATH (use -ShellJob)", unless <paramref name="shellJob"/>.
    /// </summary>
    public IEnumerable<(int Pid, string Problem)> ShellJobProblems(IEnumerable<DescriptorProbe> descriptors, bool shellJob)
    {
        if (shellJob)
        {
            yield break;
        }
        foreach (var probe in descriptors.Where(p => TerminalDevice.IsTerminal(p.Status)))
        {
            var device = TerminalDevice.Of(probe.Status, () => -1);
            bool outside = device.Role switch
            {
                TerminalRole.PtySlave => !HasMaster(device.Index),
                TerminalRole.ControllingTerminal => ControllingPair(probe.Pid) is not int index || !HasMaster(index),
                _ => false, // the other kinds are refused one by one (Terminals.Problem)
            };
            if (outside)
            {
                yield return (probe.Pid, ShellJobProblem(probe));
            }
        }
    }

    /// <summary>The problem a terminal of a shell job is without -ShellJob.</summary>
    public static string ShellJobProblem(DescriptorProbe probe) => $"fd {probe.Fd}: terminal {probe.Link} (use -ShellJob)";

    // The pseudo-terminal that controls the process now: what its /dev/tty descriptors were opened on.
    private static int? ControllingPair(int pid)
    {
        try
        {
            return TerminalDevice.SlaveIndexOfControllingTerminal(ProcStat.Read(pid).TtyNumber);
        }
        catch (IOException)
        {
            return null;
        }
    }
}
