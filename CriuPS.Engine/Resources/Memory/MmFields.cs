using System.Runtime.InteropServices;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// The fields of the kernel's mm_struct (code, data, heap, stack, arguments and environment bounds, auxv, the
/// executable, dumpability, THP setting): read from /proc and injected calls, set back in one PR_SET_MM_MAP.
/// </summary>
internal static class MmFields
{

    /// <summary>
    /// CRIU's bound on mm_saved_auxv on x86-64, in 64-bit words (its AT_VECTOR_SIZE): its dump reads no more of
    /// /proc/PID/auxv, and its restore refuses an image with more ("Image corrupted on pid N").
    /// </summary>
    public const int CriuAuxvWords = 44;

    // The AT_NULL pair that ends the vector.
    private const int AuxvEndWords = 2;

    [StructLayout(LayoutKind.Sequential)]
    private struct PrctlMmMap
    {
        public ulong StartCode, EndCode, StartData, EndData, StartBrk, Brk, StartStack, ArgStart, ArgEnd, EnvStart, EnvEnd;
        public ulong Auxv;
        public uint AuxvSize;
        public uint ExeFd;
    }

    public static void Dump(DumpedProcess process, DumpSession session)
    {
        var mm = process.Mm;
        var stat = process.Stat;
        mm.MmStartCode = stat.StartCode;
        mm.MmEndCode = stat.EndCode;
        mm.MmStartData = stat.StartData;
        mm.MmEndData = stat.EndData;
        mm.MmStartStack = stat.StartStack;
        mm.MmStartBrk = stat.StartBrk;
        // Asked of the process itself, in one batch: the current program break is not in /proc (brk(0) answers it
        // without changing it), nor are the dumpable and THP-disabled flags.
        process.Injection.Scratch.Reset();
        var batch = new SyscallBatch(process.Injection);
        int brk = batch.Add("brk(0)", RemoteCall.ProgramBreak());
        int dumpable = batch.Add("prctl(PR_GET_DUMPABLE)", RemoteCall.GetDumpable());
        int thpDisabled = batch.Add("prctl(PR_GET_THP_DISABLE)", RemoteCall.GetThpDisable());
        var answers = batch.Run();
        mm.MmBrk = (ulong)answers[brk];
        mm.Dumpable = (int)answers[dumpable];
        mm.ThpDisabled = answers[thpDisabled] != 0;
        if (ProcFiles.KsmMergesAny(process.Pid))
        {
            mm.CriupsMergeAny = true;
        }
        mm.MmArgStart = stat.ArgStart;
        mm.MmArgEnd = stat.ArgEnd;
        mm.MmEnvStart = stat.EnvStart;
        mm.MmEnvEnd = stat.EnvEnd;
        SaveAuxv(mm, ProcFiles.Auxv(process.Pid));
        mm.ExeFileId = RegularFiles.ForLink(session, $"/proc/{process.Pid}/exe", O.RDONLY);
    }

    /// <summary>
    /// Puts the auxiliary vector (its AT_NULL pair included) into the image: in CRIU's form, the first
    /// <see cref="CriuAuxvWords"/> words, and whole in criups_saved_auxv only when that cut more than the AT_NULL pair.
    /// Cutting that alone loses nothing, since PR_SET_MM_MAP zero-fills its copy beyond what it is given: Linux 6.18
    /// gives 46 words (22 entries, AT_RSEQ_FEATURE_SIZE and AT_RSEQ_ALIGN the last, and AT_NULL), and CRIU's 44 hold
    /// every entry.
    /// </summary>
    internal static void SaveAuxv(MmEntry mm, ulong[] auxv)
    {
        mm.MmSavedAuxv.Add(auxv.Take(CriuAuxvWords));
        if (auxv.Length - AuxvEndWords > CriuAuxvWords)
        {
            mm.CriupsSavedAuxv.Add(auxv);
        }
    }

    /// <summary>The vector to restore: the whole one where CriuPS kept it, else CRIU's form (all that CRIU's images have).</summary>
    internal static IReadOnlyList<ulong> AuxvToRestore(MmEntry mm) => mm.CriupsSavedAuxv.Count > 0 ? mm.CriupsSavedAuxv : mm.MmSavedAuxv;

    /// <summary>
    /// Sets the dumpable flag, once every thread's credentials are restored: a change of credentials resets it
    /// (to fs.suid_dumpable). prctl takes 0 or 1; 2 (SUID_DUMP_ROOT) only the kernel sets, from that same setting,
    /// so it is left as the kernel made it.
    /// </summary>
    public static void RestoreDumpable(RestoringProcess process)
    {
        var mm = process.Images.Mm;
        if (mm.HasDumpable && mm.Dumpable is 0 or 1)
        {
            process.Caller.Checked("prctl(PR_SET_DUMPABLE)", RemoteCall.SetDumpable((uint)mm.Dumpable));
        }
    }

    public static void Restore(RestoreSession session, RestoringProcess process)
    {
        var mm = process.Images.Mm;
        var caller = process.Caller;
        var scratch = process.Injection.Scratch;
        var exeFile = session.Images.File(mm.ExeFileId);
        var ghost = GhostFiles.GhostOf(session.Images, exeFile.Id);
        var exe = ghost is null ? exeFile.Reg.Name : GhostFiles.PathInEngine(session, exeFile.Reg, ghost.Value);
        scratch.Reset();
        // The kernel refuses to replace the executable while the old one is still mapped; when it is the very file
        // the host ran (a checkpointed `sleep`, say), the saved areas map it again, and it needs no replacing.
        // The engine looks at it through the restored mount namespace when it is one of its files (a container's).
        var seen = ghost is null ? Mounts.NamespaceView.PathOf(session, exeFile.Reg) : exe;
        bool sameExecutable = FileStatus.Of($"/proc/{process.HostPid}/exe") is var current && FileStatus.Of(seen) is var saved
            && current.Device == saved.Device && current.Inode == saved.Inode;
        int exeFd = sameExecutable ? -1
            : caller.Checked($"open of the executable {exe}", RemoteCall.Open(scratch, exe, O.RDONLY | O.CLOEXEC));
        var savedAuxv = AuxvToRestore(mm);
        var auxv = scratch.PutArray<ulong>(savedAuxv.ToArray());
        var map = scratch.Put(new PrctlMmMap
        {
            StartCode = mm.MmStartCode, EndCode = mm.MmEndCode, StartData = mm.MmStartData, EndData = mm.MmEndData,
            StartBrk = mm.MmStartBrk, Brk = mm.MmBrk, StartStack = mm.MmStartStack,
            ArgStart = mm.MmArgStart, ArgEnd = mm.MmArgEnd, EnvStart = mm.MmEnvStart, EnvEnd = mm.MmEnvEnd,
            Auxv = auxv.Value, AuxvSize = (uint)(savedAuxv.Count * sizeof(ulong)), ExeFd = (uint)exeFd,
        });
        long result = caller.Call(RemoteCall.SetMmMap(map, new ByteCount((ulong)Marshal.SizeOf<PrctlMmMap>())));
        if (result == -Errno.EPERM && exeFd >= 0)
        {
            // Replacing the executable link is for checkpoint/restore only, in the restored process (it has the session's capabilities).
            throw MissingPrivilege.For(Capability.CheckpointRestore, $"Giving process {process.Pid} its executable {exe} (PR_SET_MM_MAP)", process.Pid,
                new NativeException("prctl(PR_SET_MM, PR_SET_MM_MAP)", Errno.EPERM));
        }
        if (result < 0)
        {
            throw new NativeException($"prctl(PR_SET_MM, PR_SET_MM_MAP) in {process.Pid}", (int)-result);
        }
        if (exeFd >= 0)
        {
            caller.Checked("close", RemoteCall.Close(exeFd));
        }
        if (mm.ThpDisabled)
        {
            caller.Checked("prctl(PR_SET_THP_DISABLE)", RemoteCall.DisableThp());
        }
    }
}
