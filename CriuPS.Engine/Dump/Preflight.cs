using CriuPS.Engine.Errors;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Dump;

/// <summary>
/// Looks at a process from /proc before anything is frozen, and refuses with every problem at once when it
/// holds something CriuPS cannot save: the process is never touched for a dump that cannot succeed.
/// </summary>
internal static class Preflight
{
    public static void CheckTarget(int pid)
    {
        if (pid == Environment.ProcessId)
        {
            throw new CheckpointException(CheckpointErrorKind.SelfCheckpoint, $"Process {pid} is this PowerShell session itself; it cannot checkpoint itself.", pid,
                "Run Checkpoint-Process from another session.");
        }
        ProcStat stat;
        try
        {
            stat = ProcStat.Read(pid);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            throw new CheckpointException(CheckpointErrorKind.ProcessNotFound, $"There is no process with id {pid}.", pid);
        }
        if (stat.IsKernelThread)
        {
            throw new CheckpointException(CheckpointErrorKind.KernelThread, $"Process {pid} ({stat.Comm}) is a kernel thread; it has no user state to save.", pid);
        }
        if (stat.State is 'Z' or 'X')
        {
            throw new CheckpointException(CheckpointErrorKind.NotTraceable, $"Process {pid} ({stat.Comm}) has exited (it is a zombie).", pid);
        }
    }

    public static void CheckResources(int pid, DumpOptions options)
    {
        var problems = new List<string>();
        var status = ProcStatus.Read(pid);
        if (status.TracerPid != 0)
        {
            throw new CheckpointException(CheckpointErrorKind.NotTraceable, $"Process {pid} is already traced by process {status.TracerPid} (a debugger?).", pid,
                "Detach the debugger first.");
        }
        var children = File.ReadAllText($"/proc/{pid}/task/{pid}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (children.Length > 0)
        {
            problems.Add($"child processes {string.Join(", ", children)} (process trees are not supported yet)");
        }
        if (status.SeccompMode != 0)
        {
            problems.Add("a seccomp filter (not supported yet)");
        }
        foreach (var vma in SmapsParser.Read(pid))
        {
            var problem = AddressSpace.Unsupported(vma);
            if (problem is not null)
            {
                problems.Add(problem);
            }
        }
        int shellJobProblems = 0;
        var stat = ProcStat.Read(pid);
        if (!options.ShellJob && (stat.Session != pid || stat.ProcessGroup != pid))
        {
            // Its session or group is led by a process outside the image: only a shell job can join ours on restore.
            shellJobProblems++;
            problems.Add($"session {stat.Session} and process group {stat.ProcessGroup} led by another process (a shell job: use -ShellJob)");
        }
        foreach (var fd in ProcFiles.FileDescriptors(pid))
        {
            var (_, problem) = FileDescriptors.Classify(pid, fd, options.ShellJob);
            if (problem is not null)
            {
                shellJobProblems += problem.Contains("-ShellJob", StringComparison.Ordinal) ? 1 : 0;
                problems.Add(problem);
            }
        }
        if (problems.Count > 0)
        {
            var kind = shellJobProblems == problems.Count ? CheckpointErrorKind.ShellJobRequired : CheckpointErrorKind.Unsupported;
            throw new CheckpointException(
                kind,
                $"Process {pid} ({status.Name}) cannot be checkpointed; nothing was frozen:{Environment.NewLine} - {string.Join(Environment.NewLine + " - ", problems)}",
                pid,
                shellJobProblems > 0 ? "Use -ShellJob for processes attached to your terminal." : null);
        }
    }
}
