using System.Runtime.InteropServices;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Process;

/// <summary>
/// Seccomp filters (seccomp.img, and each thread's mode and filter in its core). Dump reads every thread's chain of
/// BPF programs with PTRACE_SECCOMP_GET_FILTER (index 0 is the oldest) and their flags; the image keeps CRIU's
/// layout: a thread's chain is written newest to oldest, each older filter's "prev" naming the one written before
/// it, and the thread points at its oldest, so following "prev" from there gives the order to install them in
/// (which matters: of two filters giving the same action, the newest one's answer wins). Restore
/// installs them last in each thread, as they may forbid the system calls the restore itself makes. A thread in
/// strict mode (read, write, exit and sigreturn only) enters it again the same way, as CRIU's restorer does last: the
/// engine traces with PTRACE_O_SUSPEND_SECCOMP, under which neither mode applies to the calls it injects, at the
/// dump as at the restore, until it lets the thread go; the thread's registers are set through ptrace, no system
/// call of its own.
/// </summary>
internal static class Seccomp
{
    public const uint ModeDisabled = 0, ModeStrict = 1, ModeFilter = 2;
    private const uint SeccompSetModeStrict = 0, SeccompSetModeFilter = 1;
    private const int SockFilterSize = 8;

    [StructLayout(LayoutKind.Sequential)]
    private struct SockFprog
    {
        public ushort Length;
        public ulong Filter;
    }

    /// <summary>Appends a thread's filters to the image's list; returns the index the thread's core points at.</summary>
    public static uint Dump(int tid, List<SeccompFilter> filters)
    {
        var chain = new List<SeccompFilter>();
        for (ulong index = 0; ; index++) // oldest first
        {
            var program = Native.Interop.Ptrace.GetSeccompFilter(tid, index);
            if (program is null)
            {
                break;
            }
            var filter = new SeccompFilter { Filter = Google.Protobuf.ByteString.CopyFrom(program) };
            ulong flags = Native.Interop.Ptrace.GetSeccompFlags(tid, index);
            if (flags != 0)
            {
                filter.Flags = (uint)flags;
            }
            chain.Add(filter);
        }
        chain.Reverse(); // newest first
        for (int i = 1; i < chain.Count; i++)
        {
            chain[i].Prev = (uint)(filters.Count + i - 1);
        }
        filters.AddRange(chain);
        return (uint)(filters.Count - 1);
    }

    /// <summary>
    /// What this session lacks to restore a thread with filters or in strict mode: injected calls must pass them until
    /// the registers are set, which PTRACE_O_SUSPEND_SECCOMP ensures, for CAP_SYS_ADMIN only.
    /// </summary>
    public static IEnumerable<Obstacle> Obstacles(ThreadCoreEntry thread, SessionPrivileges session)
    {
        if (thread.HasSeccompMode && (uint)thread.SeccompMode is ModeFilter or ModeStrict && !session.Has(Capability.SysAdmin))
        {
            yield return new($"it ran {((uint)thread.SeccompMode == ModeStrict ? "in strict seccomp mode" : "under seccomp filters")}, and restoring that "
                + "(with seccomp suspended while CriuPS works in the process) needs CAP_SYS_ADMIN", Capability.SysAdmin);
        }
    }

    /// <summary>Installs a thread's saved filters, oldest first; the last injected calls before its registers are set.</summary>
    public static void Restore(RestoreSession session, RestoringProcess process, RemoteSyscaller caller, ThreadCoreEntry thread)
    {
        if (!thread.HasSeccompMode || (uint)thread.SeccompMode == ModeDisabled)
        {
            return;
        }
        if ((uint)thread.SeccompMode == ModeStrict)
        {
            caller.Checked("seccomp(SECCOMP_SET_MODE_STRICT)", RemoteCall.Seccomp(SeccompSetModeStrict, 0, Native.Memory.Address.Null));
            return;
        }
        var all = session.Images.Entries(ImageTypes.Seccomp).Select(e => (SeccompEntry)e.Message).SelectMany(e => e.SeccompFilters).ToList();
        var scratch = process.Injection.Scratch;
        for (uint? index = thread.SeccompFilter; index is not null;)
        {
            if (index >= all.Count)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"seccomp.img has no filter {index}, which process {process.Pid} refers to.", process.Pid);
            }
            var filter = all[(int)index.Value];
            scratch.Reset();
            var code = scratch.Put(filter.Filter.Span);
            var program = scratch.Put(new SockFprog { Length = (ushort)(filter.Filter.Length / SockFilterSize), Filter = code.Value });
            caller.Checked("seccomp(SECCOMP_SET_MODE_FILTER)", RemoteCall.Seccomp(SeccompSetModeFilter, filter.HasFlags ? filter.Flags : 0, program));
            index = filter.HasPrev ? filter.Prev : null;
        }
    }
}
