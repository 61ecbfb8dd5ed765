using System.Collections.Concurrent;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;

namespace CriuPS.Native.RemoteSyscall;

/// <summary>
/// Finds a process's own signal restorer: the two instructions `mov $15, %rax; syscall` (rt_sigreturn) that every C
/// library keeps to return from signal handlers (glibc's and musl's __restore_rt, Go's runtime.sigreturn). A thread
/// parked there with its stack pointer on a <see cref="Arch.X86_64.SignalFrame"/> returns to itself by its own means, and the
/// `syscall` in it serves to run injected calls without writing anything into the process's code.
/// </summary>
public static class SignalRestorer
{
    private static readonly IReadOnlyList<byte[]> Patterns = IArchitecture.Current.SignalRestorerStubs;
    private static readonly int LongestPattern = Patterns.Max(p => p.Length);

    // Processes that map the same file at the same offset have the restorer at the same place in it: one search for
    // the C library of a whole tree, and the next checkpoint of the session finds it at once.
    private static readonly ConcurrentDictionary<(uint Major, uint Minor, ulong Inode, ulong Offset, ulong Length), long> Known = new();

    // A session that lives long meets new files (programs of their own, a C library upgraded in place): past this
    // many it forgets them all and searches again, rather than keep every file it ever met.
    internal const int FilesKept = 256;

    /// <summary>The address of a restorer in the process's executable file mappings, the C library's first; null when it has none.</summary>
    public static Address? Find(IReadOnlyList<VmaInfo> vmas, ProcessMemory memory)
    {
        var candidates = vmas.Where(v => v.Executable && v.Readable && !v.IsSpecial && v.Inode != 0)
            .OrderBy(v => v.Path.Contains("/libc", StringComparison.Ordinal) ? 0 : 1);
        foreach (var vma in candidates)
        {
            var key = (vma.DevMajor, vma.DevMinor, vma.Inode, vma.Offset, vma.Range.Length.Value);
            if (Known.Count >= FilesKept && !Known.ContainsKey(key))
            {
                Known.Clear();
            }
            long offset = Known.GetOrAdd(key, _ => Search(vma, memory));
            if (offset >= 0)
            {
                return vma.Start + new ByteCount((ulong)offset);
            }
        }
        return null;
    }

    /// <summary>
    /// Whether the instructions of a restorer are at <paramref name="address"/> now: a restorer found in a layout read
    /// a moment before, while the process ran, is used only if it is still in place.
    /// </summary>
    public static bool IsAt(ProcessMemory memory, Address address)
    {
        Span<byte> code = stackalloc byte[LongestPattern];
        try
        {
            memory.Read(address, code);
        }
        catch (NativeException)
        {
            return false; // unmapped since, or not readable
        }
        foreach (var pattern in Patterns)
        {
            if (code.StartsWith(pattern))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The length of the instructions before the `syscall` of the restorer at <paramref name="restorer"/>.</summary>
    public static int SyscallOffset(ProcessMemory memory, Address restorer) => IArchitecture.Current.SignalRestorerSyscallOffset(memory.Read(restorer, 1)[0]);

    private static long Search(VmaInfo vma, ProcessMemory memory)
    {
        const int Chunk = 256 * 1024;
        int overlap = LongestPattern - 1;
        var buffer = new byte[Chunk + overlap];
        for (ulong offset = 0; offset < vma.Range.Length.Value; offset += Chunk)
        {
            int length = (int)Math.Min((ulong)buffer.Length, vma.Range.Length.Value - offset);
            var span = buffer.AsSpan(0, length);
            memory.Read(vma.Start + new ByteCount(offset), span);
            foreach (var pattern in Patterns)
            {
                int at = span.IndexOf(pattern);
                if (at >= 0)
                {
                    return (long)offset + at;
                }
            }
        }
        return -1;
    }
}
