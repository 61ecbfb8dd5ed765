using System.Globalization;

namespace CriuPS.Native.Proc;

/// <summary>Small readers of /proc/PID files that are one value or one list.</summary>
public static class ProcFiles
{
    public static string ReadLink(string path) =>
        new FileInfo(path).LinkTarget ?? throw new IOException($"{path} is not a symbolic link");

    public static List<int> ThreadIds(int pid) =>
        Directory.EnumerateDirectories($"/proc/{pid}/task")
            .Select(d => int.Parse(Path.GetFileName(d), CultureInfo.InvariantCulture))
            .Order()
            .ToList();

    public static List<int> FileDescriptors(int pid) =>
        Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd")
            .Select(d => int.Parse(Path.GetFileName(d), CultureInfo.InvariantCulture))
            .Order()
            .ToList();

    /// <summary>The auxiliary vector as (type, value) words, including the terminating AT_NULL pair.</summary>
    public static ulong[] Auxv(int pid)
    {
        var bytes = File.ReadAllBytes($"/proc/{pid}/auxv");
        var words = new ulong[bytes.Length / 8];
        Buffer.BlockCopy(bytes, 0, words, 0, words.Length * 8);
        int end = 0;
        while (end + 1 < words.Length && words[end] != 0)
        {
            end += 2;
        }
        return words[..Math.Min(words.Length, end + 2)];
    }

    public static uint Personality(int pid) =>
        uint.Parse(File.ReadAllText($"/proc/{pid}/personality").Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    public static string Comm(int pid, int tid) => File.ReadAllText($"/proc/{pid}/task/{tid}/comm").TrimEnd('\n');

    public static int OomScoreAdj(int pid) => int.Parse(File.ReadAllText($"/proc/{pid}/oom_score_adj").Trim(), CultureInfo.InvariantCulture);

    public static uint LoginUid(int pid) => uint.Parse(File.ReadAllText($"/proc/{pid}/loginuid").Trim(), CultureInfo.InvariantCulture);

    public static bool Exists(int pid) => Directory.Exists($"/proc/{pid}");

    /// <summary>
    /// Reads a large /proc file whole (smaps of a process with thousands of areas runs to megabytes), in reads of
    /// 1 MiB into one growing buffer; the caller parses the bytes, which beats decoding megabytes of text it mostly
    /// skips. Returns the buffer and the length read.
    /// </summary>
    public static (byte[] Bytes, int Length) ReadLarge(string path)
    {
        using var handle = File.OpenHandle(path);
        var bytes = new byte[1 << 20];
        int length = 0;
        while (true)
        {
            if (bytes.Length - length < 1 << 20)
            {
                Array.Resize(ref bytes, bytes.Length * 2);
            }
            int n = RandomAccess.Read(handle, bytes.AsSpan(length), length);
            if (n == 0)
            {
                return (bytes, length);
            }
            length += n;
        }
    }
}
