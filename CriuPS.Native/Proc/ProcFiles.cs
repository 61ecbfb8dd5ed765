using System.Buffers;
using System.Globalization;
using System.Text;
using CriuPS.Native.Interop;
using Tmds.Linux;

namespace CriuPS.Native.Proc;

/// <summary>Small readers of /proc/PID files that are one value or one list.</summary>
public static class ProcFiles
{
    /// <summary>A link's target (an fd's, a namespace's); fails as a missing, denied or other file would (IOException, UnauthorizedAccessException).</summary>
    public static string ReadLink(string path) => Readlink.Read(path, out int errno) ?? throw (errno == Errno.EINVAL
        ? new IOException($"{path} is not a symbolic link")
        : OpenFailed(path, errno));

    /// <summary>Every process of this pid namespace now (/proc's numbered directories).</summary>
    public static List<int> ProcessIds() =>
        Directory.EnumerateDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) ? pid : 0)
            .Where(pid => pid > 0)
            .ToList();

    public static List<int> ThreadIds(int pid) =>
        Directory.EnumerateDirectories($"/proc/{pid}/task")
            .Select(d => int.Parse(Path.GetFileName(d), CultureInfo.InvariantCulture))
            .Order()
            .ToList();

    public static List<int> FileDescriptors(int pid)
    {
        using var directory = DescriptorDirectory.Open(pid);
        return directory.Numbers();
    }

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
        uint.Parse(ReadText($"/proc/{pid}/personality").Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    public static int OomScoreAdj(int pid) => int.Parse(ReadText($"/proc/{pid}/oom_score_adj").Trim(), CultureInfo.InvariantCulture);

    public static uint LoginUid(int pid) => uint.Parse(ReadText($"/proc/{pid}/loginuid").Trim(), CultureInfo.InvariantCulture);

    public static bool Exists(int pid) => Directory.Exists($"/proc/{pid}");

    /// <summary>
    /// The CPU time thread <paramref name="tid"/> has had, as the scheduler accounts it (the first field of its
    /// schedstat, which CONFIG_SCHED_INFO provides; brought up to date when the thread leaves a CPU and at each tick);
    /// null when the thread is gone or the kernel does not say.
    /// </summary>
    public static TimeSpan? RunTime(int pid, int tid)
    {
        try
        {
            var first = ReadText($"/proc/{pid}/task/{tid}/schedstat").Split(' ')[0];
            return long.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out long nanoseconds) ? TimeSpan.FromTicks(nanoseconds / 100) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// Whether the process set prctl(PR_SET_MEMORY_MERGE), which makes every area it maps mergeable by KSM
    /// (/proc/PID/ksm_stat says "ksm_merge_any: yes"; a kernel without KSM has no such file).
    /// </summary>
    public static bool KsmMergesAny(int pid) =>
        File.Exists($"/proc/{pid}/ksm_stat") && ReadText($"/proc/{pid}/ksm_stat").Contains("ksm_merge_any: yes", StringComparison.Ordinal);

    /// <summary>The parser of a file's bytes that <see cref="ParseWhole"/> calls.</summary>
    public delegate T BytesParser<out T>(ReadOnlySpan<byte> bytes);

    /// <summary>
    /// Reads a /proc file whole into a pooled buffer and parses its bytes (smaps of a process with thousands of
    /// areas runs to megabytes: parsing bytes beats decoding text that is mostly skipped). The buffer is reused by
    /// the next call: a fresh megabyte array per read cost milliseconds in allocation and garbage collection.
    /// </summary>
    public static T ParseWhole<T>(string path, BytesParser<T> parse) => ParseWhole(path, parse, 256 * 1024);

    /// <summary>
    /// Reads a small /proc file (a descriptor's fdinfo, a stat, status or comm) whole as text: one open, a read or
    /// two and a close, where File.ReadAllText costs streams and encoders per file, thousands of times per dump.
    /// </summary>
    public static string ReadText(string path) => ParseWhole(path, static bytes => Encoding.UTF8.GetString(bytes), 4096);

    private static T ParseWhole<T>(string path, BytesParser<T> parse, int initialSize)
    {
        const int MinimumRead = 4096;
        // open, read, close and nothing else: File.OpenHandle adds an fstat and an flock per file.
        using var file = FileDescriptor.TryOpen(path, O.RDONLY, out int errno) ?? throw OpenFailed(path, errno);
        var bytes = ArrayPool<byte>.Shared.Rent(initialSize);
        try
        {
            int length = 0;
            while (ReadMore(file, path, ref bytes, length, MinimumRead) is int n and > 0)
            {
                length += n;
            }
            return parse(bytes.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    /// <summary>What <see cref="ReadLines"/> hands each line to (without its newline).</summary>
    public delegate void LineHandler(ReadOnlySpan<byte> line);

    /// <summary>
    /// Reads a /proc file line by line through one buffer of 64 KiB: smaps of a process with 10,000 areas runs to
    /// 7 MB, and read whole it grew a buffer to 8 MiB by doubling, 16 MB of fresh memory touched per read in a
    /// program that starts afresh for each dump (4,000 of the 15,000 page faults of such a dump, perf).
    /// </summary>
    public static void ReadLines(string path, LineHandler onLine)
    {
        using var file = FileDescriptor.TryOpen(path, O.RDONLY, out int errno) ?? throw OpenFailed(path, errno);
        var bytes = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            int length = 0;
            // room for one byte more at least: a line longer than the buffer (none in /proc's text files, whose
            // paths stop at 4 KiB) grows it
            while (ReadMore(file, path, ref bytes, length, 1) is int n and > 0)
            {
                var unfinished = WholeLines(bytes.AsSpan(0, length + n), onLine);
                unfinished.CopyTo(bytes);
                length = unfinished.Length;
            }
            if (length > 0)
            {
                onLine(bytes.AsSpan(0, length));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    /// <summary>Hands each line of <paramref name="text"/> to <paramref name="onLine"/>, as <see cref="ReadLines"/> does a file's.</summary>
    public static void ForEachLine(ReadOnlySpan<byte> text, LineHandler onLine)
    {
        var unfinished = WholeLines(text, onLine);
        if (!unfinished.IsEmpty)
        {
            onLine(unfinished);
        }
    }

    // Hands each line that ends with a newline to onLine; returns what follows the last newline.
    private static ReadOnlySpan<byte> WholeLines(ReadOnlySpan<byte> text, LineHandler onLine)
    {
        int newline;
        while ((newline = text.IndexOf((byte)'\n')) >= 0)
        {
            onLine(text[..newline]);
            text = text[(newline + 1)..];
        }
        return text;
    }

    // One read into the pooled buffer after its first `length` bytes, once it has `room` bytes free (else it is
    // swapped for one twice as large): the bytes read, 0 at the end of the file.
    private static unsafe int ReadMore(FileDescriptor file, string path, ref byte[] bytes, int length, int room)
    {
        if (bytes.Length - length < room)
        {
            var larger = ArrayPool<byte>.Shared.Rent(bytes.Length * 2);
            bytes.AsSpan(0, length).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(bytes);
            bytes = larger;
        }
        while (true)
        {
            long n;
            fixed (byte* buffer = &bytes[length])
            {
                n = LibC.read(file.Value, buffer, bytes.Length - length);
            }
            if (n >= 0)
            {
                return (int)n;
            }
            int error = LibC.errno;
            if (error != Errno.EINTR)
            {
                throw new IOException($"Could not read {path}: {Errno.Describe(error)}");
            }
        }
    }

    // The exceptions File.ReadAllText throws: callers take the first for a process that is gone, and must not take
    // a file another user's process keeps to itself for one.
    internal static Exception OpenFailed(string path, int errno) => errno switch
    {
        Errno.ENOENT => new FileNotFoundException($"Could not find {path}", path),
        Errno.EACCES or Errno.EPERM => new UnauthorizedAccessException($"Access to the path '{path}' is denied."),
        _ => new IOException($"Could not open {path}: {Errno.Describe(errno)}"),
    };
}
