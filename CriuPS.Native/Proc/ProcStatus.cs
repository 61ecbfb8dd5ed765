using System.Globalization;

namespace CriuPS.Native.Proc;

/// <summary>
/// The fields of /proc/PID/status (or /proc/PID/task/TID/status) that checkpointing needs, found in the text as they
/// are asked for: a dump reads a status per thread and asks it for a dozen of its 59 fields, and splitting every line
/// into a dictionary was half the cost of reading it.
/// </summary>
public sealed class ProcStatus
{
    private readonly string text;

    private ProcStatus(string text) => this.text = text;

    public static ProcStatus Read(int pid) => Parse(ProcFiles.ReadText($"/proc/{pid}/status"));

    public static ProcStatus ReadThread(int pid, int tid) => Parse(ProcFiles.ReadText($"/proc/{pid}/task/{tid}/status"));

    public static ProcStatus Parse(string text) => new(text);

    public string Name => Get("Name");

    /// <summary>The state letter: R, S, D, T (stopped), t (traced), Z, X...</summary>
    public char State => Get("State")[0];

    public int Tgid => Int("Tgid");

    public int PPid => Int("PPid");

    /// <summary>
    /// NSpid: the task's id in each PID namespace it is in, from the namespace of this /proc inwards (the last is what
    /// the task itself sees); one id for a task of this /proc's namespace.
    /// </summary>
    public int[] NamespacePids => Get("NSpid").Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries)
        .Select(id => int.Parse(id, System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    public int TracerPid => Int("TracerPid");

    public uint Umask => Convert.ToUInt32(Get("Umask"), 8);

    /// <summary>Real, effective, saved and filesystem ids.</summary>
    public uint[] Uids => Ids("Uid");

    public uint[] Gids => Ids("Gid");

    public uint[] Groups => Ids("Groups");

    public int Threads => Int("Threads");

    public ulong SigPending => Hex("SigPnd");

    public ulong SharedPending => Hex("ShdPnd");

    public ulong SigBlocked => Hex("SigBlk");

    public ulong SigIgnored => Hex("SigIgn");

    public ulong SigCaught => Hex("SigCgt");

    public ulong CapInheritable => Hex("CapInh");

    public ulong CapPermitted => Hex("CapPrm");

    public ulong CapEffective => Hex("CapEff");

    public ulong CapBounding => Hex("CapBnd");

    public ulong CapAmbient => Has("CapAmb") ? Hex("CapAmb") : 0;

    public uint NoNewPrivs => Has("NoNewPrivs") ? (uint)Int("NoNewPrivs") : 0;

    /// <summary>0 disabled, 1 strict, 2 filter.</summary>
    public int SeccompMode => Has("Seccomp") ? Int("Seccomp") : 0;

    /// <summary>Whether this kernel reports the field at all (some are newer than others).</summary>
    public bool Has(string key) => Find(key) >= 0;

    public string Get(string key)
    {
        int colon = Find(key);
        if (colon < 0)
        {
            throw new InvalidDataException($"/proc status has no {key} field");
        }
        int end = text.IndexOf('\n', colon);
        return text.AsSpan(colon + 1, (end < 0 ? text.Length : end) - colon - 1).Trim().ToString();
    }

    // Where the colon after a line's "key" is, or -1: a key found inside another line or key is passed over.
    private int Find(string key)
    {
        for (int at = text.IndexOf(key, StringComparison.Ordinal); at >= 0; at = text.IndexOf(key, at + 1, StringComparison.Ordinal))
        {
            int colon = at + key.Length;
            if ((at == 0 || text[at - 1] == '\n') && colon < text.Length && text[colon] == ':')
            {
                return colon;
            }
        }
        return -1;
    }

    private int Int(string key) => int.Parse(Get(key), CultureInfo.InvariantCulture);

    private ulong Hex(string key) => ulong.Parse(Get(key), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private uint[] Ids(string key) =>
        Get(key).Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries).Select(v => uint.Parse(v, CultureInfo.InvariantCulture)).ToArray();
}
