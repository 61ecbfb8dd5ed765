using System.Globalization;

namespace CriuPS.Native.Proc;

/// <summary>/proc/PID/stat: the process's state, family and the mm boundaries (see proc(5) for field numbers).</summary>
public sealed class ProcStat
{
    private readonly string text;

    // Where each field after comm begins in the text (field 3, the state, first), and one more: past the last one's
    // end. Fields are cut out as they are asked for: a dump reads a stat per process and per thread, and asks each
    // for a few of its 52 fields.
    private readonly int[] starts;

    private ProcStat(string comm, string text, int[] starts)
    {
        Comm = comm;
        this.text = text;
        this.starts = starts;
    }

    public static ProcStat Read(int pid) => Parse(ProcFiles.ReadText($"/proc/{pid}/stat"));

    public static ProcStat ReadThread(int pid, int tid) => Parse(ProcFiles.ReadText($"/proc/{pid}/task/{tid}/stat"));

    public static ProcStat Parse(string text)
    {
        // comm is in parentheses and may itself contain spaces and parentheses: the fields start after the last ')'.
        int open = text.IndexOf('(');
        int close = text.LastIndexOf(')');
        int first = close + 2;
        int end = text.Length > first && text[^1] == '\n' ? text.Length - 1 : text.Length;
        var fields = text.AsSpan(first, Math.Max(0, end - first));
        var starts = new int[fields.Count(' ') + 2];
        starts[0] = first;
        for (int i = 1, at = first; i < starts.Length - 1; i++)
        {
            at = text.IndexOf(' ', at) + 1;
            starts[i] = at;
        }
        starts[^1] = end + 1;
        return new ProcStat(text[(open + 1)..close], text, starts);
    }

    public string Comm { get; }

    /// <summary>Field number n as proc(5) counts them (1 = pid, 2 = comm, 3 = state...).</summary>
    private ReadOnlySpan<char> Field(int n)
    {
        int i = n - 3;
        if (i < 0 || i + 1 >= starts.Length)
        {
            throw new InvalidDataException($"/proc stat has no field {n}");
        }
        return text.AsSpan(starts[i], starts[i + 1] - starts[i] - 1);
    }

    private ulong U(int n) => ulong.Parse(Field(n), CultureInfo.InvariantCulture);

    private long L(int n) => long.Parse(Field(n), CultureInfo.InvariantCulture);

    public char State => Field(3)[0];

    public int PPid => (int)L(4);

    public int ProcessGroup => (int)L(5);

    public int Session => (int)L(6);

    /// <summary>The controlling terminal's device number (major in bits 8-15, minor in bits 0-7 and 20-31), 0 for none.</summary>
    public int TtyNumber => (int)L(7);

    /// <summary>The foreground process group of the controlling terminal, -1 when there is none.</summary>
    public int TerminalForegroundGroup => (int)L(8);

    /// <summary>The kernel's PF_* task flags.</summary>
    public uint Flags => (uint)U(9);

    public int Priority => (int)L(18);

    public int Nice => (int)L(19);

    public ulong StartTime => U(22);

    /// <summary>Resident set size (field 24), in pages: memory of the process in RAM now.</summary>
    public Memory.PageCount Resident => new(U(24));

    public ulong StartCode => U(26);

    public ulong EndCode => U(27);

    public ulong StartStack => U(28);

    public uint ExitSignal => (uint)L(38);

    /// <summary>The CPU the thread last ran on (whose runqueue a sleeping thread's scheduler times were taken on).</summary>
    public int Processor => (int)L(39);

    public uint RtPriority => (uint)U(40);

    public uint Policy => (uint)U(41);

    public ulong StartData => U(45);

    public ulong EndData => U(46);

    public ulong StartBrk => U(47);

    public ulong ArgStart => U(48);

    public ulong ArgEnd => U(49);

    public ulong EnvStart => U(50);

    public ulong EnvEnd => U(51);

    public int ExitCode => (int)L(52);

    /// <summary>PF_KTHREAD: kernel threads have no user memory to save.</summary>
    public bool IsKernelThread => (Flags & 0x00200000) != 0;

    /// <summary>PF_EXITING: the task is exiting; set before the exit frees its memory, which its pidfd reports later.</summary>
    public bool IsExiting => (Flags & 0x00000004) != 0;
}
