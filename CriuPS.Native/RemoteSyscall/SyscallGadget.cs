using CriuPS.Native.Arch;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;

namespace CriuPS.Native.RemoteSyscall;

/// <summary>
/// Finds a system call instruction (x86-64: `syscall`, 0f 05) already mapped executable in a process, so that the first injected
/// call (the mmap of our scratch area) needs no write into the target's code: writing into shared text would
/// turn a library page into a private copy that the dump would then see.
/// </summary>
public static class SyscallGadget
{
    public static Address Find(IReadOnlyList<VmaInfo> vmas, ProcessMemory memory)
    {
        // The vDSO is in every process and small; file-backed text is the fallback.
        var candidates = vmas.Where(v => v.Path == "[vdso]")
            .Concat(vmas.Where(v => v.Executable && v.Readable && !v.IsSpecial && v.Inode != 0));
        foreach (var vma in candidates)
        {
            var found = Search(vma, memory);
            if (found is not null)
            {
                return found.Value;
            }
        }
        throw new InvalidOperationException($"process {memory.ProcessId} has no executable 'syscall' instruction to borrow");
    }

    private static Address? Search(VmaInfo vma, ProcessMemory memory)
    {
        const int chunk = 64 * 1024;
        var buffer = new byte[chunk + 1];
        for (ulong offset = 0; offset < vma.Range.Length.Value; offset += chunk)
        {
            int length = (int)Math.Min((ulong)chunk + 1, vma.Range.Length.Value - offset);
            var span = buffer.AsSpan(0, length);
            memory.Read(vma.Start + new ByteCount(offset), span);
            int i = span.IndexOf(IArchitecture.Current.SyscallInstruction);
            if (i >= 0)
            {
                return vma.Start + new ByteCount(offset + (ulong)i);
            }
        }
        return null;
    }
}
