using System.Globalization;

namespace CriuPS.Native.Proc;

/// <summary>The fields of /proc/PID/status (or /proc/PID/task/TID/status) that checkpointing needs.</summary>
public sealed class ProcStatus
{
    private readonly Dictionary<string, string> fields;

    private ProcStatus(Dictionary<string, string> fields) => this.fields = fields;

    public static ProcStatus Read(int pid) => Parse(ProcFiles.ReadText($"/proc/{pid}/status"));

    public static ProcStatus ReadThread(int pid, int tid) => Parse(ProcFiles.ReadText($"/proc/{pid}/task/{tid}/status"));

    public static ProcStatus Parse(string text)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            int colon = line.IndexOf(':');
            if (colon > 0)
            {
                fields[line[..colon]] = line[(colon + 1)..].Trim();
            }
        }
        return new ProcStatus(fields);
    }

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
    public bool Has(string key) => fields.ContainsKey(key);

    public string Get(string key) =>
        fields.TryGetValue(key, out var value) ? value : throw new InvalidDataException($"/proc status has no {key} field");

    private int Int(string key) => int.Parse(Get(key), CultureInfo.InvariantCulture);

    private ulong Hex(string key) => ulong.Parse(Get(key), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private uint[] Ids(string key) =>
        Get(key).Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries).Select(v => uint.Parse(v, CultureInfo.InvariantCulture)).ToArray();
}
