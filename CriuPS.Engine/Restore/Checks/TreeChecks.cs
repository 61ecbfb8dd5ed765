using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;

namespace CriuPS.Engine.Restore.Checks;

/// <summary>
/// The process tree of pstree.img as a checkpoint writes it: every process and thread id of Linux's range and used
/// once, each process after its parent (the tree is created parents first, so a parent missing or listed later would
/// leave its children out of the restore), and in a session and group the tree can give it back.
/// </summary>
internal static class TreeChecks
{
    /// <summary>Linux's PID_MAX_LIMIT on 64-bit machines: no process or thread id is larger (nor 0).</summary>
    public const uint PidMaxLimit = 4 * 1024 * 1024;

    public static void Check(string path, IReadOnlyList<PstreeEntry> tree)
    {
        if (tree.Count == 0)
        {
            throw ImageDamage.In(path, "it lists no process.");
        }
        var root = tree[0];
        var pids = ImageDamage.UniqueBy(tree, p => p.Pid, path, "pid", i => Describe(tree, i));
        var position = Enumerable.Range(0, tree.Count).ToDictionary(i => tree[i].Pid);
        var tasks = new Dictionary<uint, string>();
        for (int i = 0; i < tree.Count; i++)
        {
            var process = tree[i];
            string entry = Describe(tree, i);
            if (process.Pid is 0 or > PidMaxLimit)
            {
                throw ImageDamage.In(path, $"{entry}: pid {process.Pid} is outside Linux's range (1 to {PidMaxLimit}).");
            }
            if (process.Threads.Count > 0 && process.Threads[0] != process.Pid)
            {
                throw ImageDamage.In(path, $"{entry}: its first thread is {process.Threads[0]}; a process's thread list starts with its own pid.");
            }
            for (int t = 0; t < Math.Max(1, process.Threads.Count); t++)
            {
                uint tid = process.Threads.Count > 0 ? process.Threads[t] : process.Pid;
                if (tid is 0 or > PidMaxLimit)
                {
                    throw ImageDamage.In(path, $"{entry}.threads[{t}]: thread id {tid} is outside Linux's range (1 to {PidMaxLimit}).");
                }
                string here = process.Threads.Count > 0 ? $"{entry}.threads[{t}]" : entry;
                if (!tasks.TryAdd(tid, here))
                {
                    throw ImageDamage.In(path, $"{tasks[tid]} and {here} have the same id, {tid}; each process and thread must have its own.");
                }
            }
            CheckNamespaceLevels(path, process, entry);
            if (i == 0)
            {
                continue; // the root's parent is whoever restores it
            }
            if (!position.TryGetValue(process.Ppid, out int parent) || parent >= i)
            {
                throw ImageDamage.In(path, $"{entry}: its parent {process.Ppid} is no process listed before it; every process but the first has its parent in the image, listed first.");
            }
            // A process lives in its parent's PID namespace, or is the init (PID 1) of one made below it.
            int depth = process.CriupsNsPid.Count, parentDepth = tree[parent].CriupsNsPid.Count;
            if (depth != parentDepth && (depth != parentDepth + 1 || process.CriupsNsPid[^1] != 1))
            {
                throw ImageDamage.In(path, $"{entry}: it has ids in {depth} PID namespace(s) below the root's and its parent in {parentDepth}; a process is in its parent's, or the init (id 1) of one made below it.");
            }
        }
        for (int i = 0; i < tree.Count; i++)
        {
            var process = tree[i];
            // A session or group is one of the tree's processes, the root's own (a shell job's, outside the tree), or
            // one whose leader has exited, made again by a stand-in with the leader's PID (StandInLeader): a PID in
            // Linux's range that no task of the image has.
            foreach (var (id, rootId, what) in new[] { (process.Sid, root.Sid, "session"), (process.Pgid, root.Pgid, "process group") })
            {
                if (id == rootId || pids.ContainsKey(id))
                {
                    continue;
                }
                if (id is 0 or > PidMaxLimit)
                {
                    throw ImageDamage.In(path, $"{Describe(tree, i)}: its {what} {id} is outside Linux's range (1 to {PidMaxLimit}).");
                }
                if (tasks.TryGetValue(id, out var thread))
                {
                    throw ImageDamage.In(path, $"{Describe(tree, i)}: its {what} {id} is the id of {thread}, a thread, which leads no {what}.");
                }
            }
            // setpgid(2) joins a group of the caller's own session only.
            if (pids.TryGetValue(process.Pgid, out var leader) && leader.Sid != process.Sid)
            {
                throw ImageDamage.In(path, $"{Describe(tree, i)}: it is in session {process.Sid}, but its process group {process.Pgid} is led by a process of session {leader.Sid}; a group lies within one session.");
            }
        }
    }

    /// <summary>Linux nests PID namespaces 32 deep at most (MAX_PID_NS_LEVEL).</summary>
    private const int MaxPidNamespaceLevels = 32;

    // criups_ns_pid and criups_ns_tid: ids in Linux's range, as many per thread as the process has levels, the leader's its own.
    private static void CheckNamespaceLevels(string path, PstreeEntry process, string entry)
    {
        int depth = process.CriupsNsPid.Count;
        if (depth >= MaxPidNamespaceLevels)
        {
            throw ImageDamage.In(path, $"{entry}: criups_ns_pid has {depth} levels; Linux nests PID namespaces {MaxPidNamespaceLevels} deep at most.");
        }
        foreach (uint id in process.CriupsNsPid.Concat(process.CriupsNsTid).Where(id => id is 0 or > PidMaxLimit))
        {
            throw ImageDamage.In(path, $"{entry}: id {id} in a PID namespace below the root's is outside Linux's range (1 to {PidMaxLimit}).");
        }
        int threads = Math.Max(1, process.Threads.Count);
        if (depth == 0 ? process.CriupsNsTid.Count != 0 : process.CriupsNsTid.Count != threads * depth || !process.CriupsNsTid.Take(depth).SequenceEqual(process.CriupsNsPid))
        {
            throw ImageDamage.In(path, $"{entry}: criups_ns_tid has {process.CriupsNsTid.Count} ids for {threads} thread(s) in {depth} PID namespace level(s) below the root's, the leader's first and its own.");
        }
    }

    private static string Describe(IReadOnlyList<PstreeEntry> tree, int i) => $"{ImageDamage.Entry(i)} (pid {tree[i].Pid})";
}
