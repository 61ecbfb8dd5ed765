using System.Collections;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Proc;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace CriuPS.Engine.Dump;

/// <summary>
/// The ids of a dumped tree as the image keeps them, CRIU's way: each process's and thread's id in the PID namespace
/// of the tree's root (its "virtual" PID: 1 for a root that is its namespace's init), the namespace the restore makes
/// again; for those in namespaces below the root's (the init of a namespace that the tree made, and what runs under
/// it), their ids there too, which CRIU has no place for (pstree.img's criups_ns_pid and criups_ns_tid). Read from
/// NSpid, which lists a task's ids from the engine's namespace inwards. The dump works with the ids the engine sees
/// until the images are written, when they are numbered this way.
/// </summary>
internal sealed class TreePids
{
    // Every task of the tree, by the id the engine sees: its NSpid (the engine's namespace first).
    private readonly Dictionary<int, int[]> levels = new();

    private TreePids(DumpSession session)
    {
        foreach (var process in session.Processes)
        {
            foreach (var thread in process.Threads)
            {
                // Read with the thread's state, where it was (a pre-dump reads no thread's state).
                levels[thread.Tid] = process.NamespacePids.TryGetValue(thread.Tid, out var read) ? read : ProcStatus.ReadThread(process.Pid, thread.Tid).NamespacePids;
            }
        }
        foreach (var zombie in session.Zombies)
        {
            levels[zombie.Pid] = ProcStatus.Read(zombie.Pid).NamespacePids;
        }
        int root = session.TreeOrder[0];
        RootDepth = levels[root].Length - 1;
    }

    public static TreePids Of(DumpSession session) => new(session);

    /// <summary>
    /// Before the freeze, for a root below the engine's PID namespace: <see cref="Renumber(IEnumerable{IMessage})"/>
    /// walks the entries through the generated classes' reflection, which they build for all messages at once (60 ms
    /// the first time), so it is built now rather than while the tree is frozen.
    /// </summary>
    public static void PrepareRenumbering(int root)
    {
        if (ProcStatus.Read(root).NamespacePids.Length > 1)
        {
            var seen = new HashSet<MessageDescriptor>();
            foreach (var schema in Images.ImageTypes.All.SelectMany(type => new[] { type.Head, type.Entry }).OfType<Images.EntrySchema>())
            {
                BuildAccessors(schema.Descriptor, seen);
            }
        }
    }

    private static void BuildAccessors(MessageDescriptor descriptor, HashSet<MessageDescriptor> seen)
    {
        if (!seen.Add(descriptor))
        {
            return;
        }
        foreach (var field in descriptor.Fields.InFieldNumberOrder().Where(f => f.FieldType == FieldType.Message))
        {
            _ = field.Accessor;
            BuildAccessors(field.MessageType, seen);
        }
    }

    /// <summary>How far below the engine's PID namespace the root's is: 0 when the root is in the engine's.</summary>
    public int RootDepth { get; }

    /// <summary>
    /// The id in the root's namespace of the task, session or group the engine sees as <paramref name="id"/>; 0 for a
    /// session or group whose leader is outside that namespace, as the kernel says of it there.
    /// </summary>
    public uint InRoot(int id)
    {
        if (id == 0 || RootDepth == 0 && !levels.ContainsKey(id))
        {
            return (uint)id;
        }
        var seen = levels.TryGetValue(id, out var known) ? known : LevelsOf(id);
        return seen.Length > RootDepth ? (uint)seen[RootDepth] : 0;
    }

    /// <summary>The task's ids in the namespaces below the root's, outermost first; none for a task of the root's.</summary>
    public IEnumerable<uint> Below(int tid) => levels[tid].Skip(RootDepth + 1).Select(id => (uint)id);

    public string Name(int id) => InRoot(id).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A pstree entry of the engine's ids, numbered for the image.</summary>
    public PstreeEntry ForImage(PstreeEntry seen)
    {
        var entry = new PstreeEntry { Pid = InRoot((int)seen.Pid), Ppid = InRoot((int)seen.Ppid), Pgid = InRoot((int)seen.Pgid), Sid = InRoot((int)seen.Sid) };
        entry.Threads.Add(seen.Threads.Select(t => InRoot((int)t)));
        entry.CriupsNsPid.Add(Below((int)seen.Pid));
        if (entry.CriupsNsPid.Count > 0)
        {
            entry.CriupsNsTid.Add(seen.Threads.SelectMany(t => Below((int)t)));
        }
        return entry;
    }

    /// <summary>
    /// Numbers for the image the PIDs that the other entries keep, which the dump read as the engine sees them: the
    /// owners of files, the holders of locks, the processes pidfds name, a terminal's session and foreground group, the thread a POSIX timer
    /// signals. Nothing changes for a root of the engine's namespace.
    /// </summary>
    public void Renumber(IEnumerable<IMessage> entries)
    {
        if (RootDepth == 0)
        {
            return;
        }
        foreach (var entry in entries)
        {
            Renumber(entry);
        }
    }

    private void Renumber(IMessage message)
    {
        switch (message)
        {
            case FownEntry owner:
                owner.Pid = InRoot((int)owner.Pid);
                break;
            case FileLockEntry held:
                held.Pid = (int)InRoot(held.Pid);
                break;
            case TtyInfoEntry terminal:
                (terminal.Sid, terminal.Pgrp) = (InRoot((int)terminal.Sid), InRoot((int)terminal.Pgrp));
                break;
            case PidfdEntry pidfd when pidfd.Nspid > 0:
                pidfd.Nspid = (int)InRoot(pidfd.Nspid);
                break;
            case PosixTimerEntry timer when timer.HasNotifyThreadId:
                timer.NotifyThreadId = (int)InRoot(timer.NotifyThreadId);
                break;
        }
        foreach (var field in message.Descriptor.Fields.InFieldNumberOrder().Where(f => f.FieldType == FieldType.Message))
        {
            var value = field.Accessor.GetValue(message);
            if (field.IsRepeated)
            {
                foreach (IMessage item in (IList)value)
                {
                    Renumber(item);
                }
            }
            else if (value is IMessage inner && field.Accessor.HasValue(message))
            {
                Renumber(inner);
            }
        }
    }

    // A leader outside the tree: what its NSpid says, or nothing if it is gone.
    private static int[] LevelsOf(int id)
    {
        try
        {
            return ProcStatus.Read(id).NamespacePids;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}
