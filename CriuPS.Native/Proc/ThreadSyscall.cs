using System.Globalization;

namespace CriuPS.Native.Proc;

/// <summary>
/// What /proc/PID/task/TID/syscall shows of a thread: runnable, on a CPU or waiting for one ("running": nothing more
/// is shown), or stopped or asleep in system call <see cref="Number"/> (-1: in none) at <see cref="InstructionPointer"/>
/// (in a call: the instruction after its `syscall`).
/// </summary>
public readonly record struct ThreadSyscall(bool Running, long Number, ulong InstructionPointer)
{
    /// <summary>The thread's state now; null when it is gone.</summary>
    public static ThreadSyscall? Read(int pid, int tid)
    {
        string text;
        try
        {
            text = ProcFiles.ReadText($"/proc/{pid}/task/{tid}/syscall").TrimEnd('\n');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        return Parse(text);
    }

    /// <summary>One line of the file: "running", "-1 SP PC" or "NR A1 .. A6 SP PC".</summary>
    public static ThreadSyscall? Parse(string text)
    {
        if (text == "running")
        {
            return new ThreadSyscall(true, -1, 0);
        }
        var fields = text.Split(' ');
        if (fields.Length < 3 || !long.TryParse(fields[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long number)
            || !ulong.TryParse(fields[^1].AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong pc))
        {
            return null;
        }
        return new ThreadSyscall(false, number, pc);
    }
}
