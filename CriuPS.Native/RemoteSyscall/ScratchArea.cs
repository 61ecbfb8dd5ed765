using System.Buffers.Binary;
using System.Runtime.InteropServices;
using CriuPS.Native.Arch;
using CriuPS.Native.Memory;

namespace CriuPS.Native.RemoteSyscall;

/// <summary>
/// Memory we mapped inside the target: the first bytes hold `syscall; int3` (a restore's) or our signature (a dump's),
/// the rest holds the arguments of injected calls (paths, structures, iovec arrays) and our code, handed out by a bump
/// allocator reset between calls.
/// </summary>
public sealed class ScratchArea
{
    /// <summary>The system call instruction, then a trap that hands control back to us right after the call returns.</summary>
    public static readonly byte[] Code = IArchitecture.Current.SyscallThenTrap;

    private const int CodeReserve = 64;
    private ulong used;
    private ulong floor = CodeReserve;

    public ScratchArea(AddressRange range, ProcessMemory memory)
    {
        Range = range;
        Memory = memory;
        Reset();
    }

    public AddressRange Range { get; }

    public ProcessMemory Memory { get; }

    public Address CodeAddress => Range.Start;

    public ByteCount DataCapacity => Range.Length - new ByteCount(CodeReserve);

    /// <summary>Forgets all data placed since the last reset.</summary>
    public void Reset() => used = floor;

    /// <summary>Places bytes that stay for the rest of the session (no reset frees them) and returns where they are.</summary>
    public Address Keep(ReadOnlySpan<byte> data)
    {
        Reset();
        var address = Put(data);
        floor = used;
        return address;
    }

    /// <summary>The point the next reservation starts from, for <see cref="Rewind"/>.</summary>
    public ulong Mark() => used;

    /// <summary>Frees everything reserved since <paramref name="mark"/>, keeping what came before.</summary>
    public void Rewind(ulong mark) => used = mark;

    /// <summary>The bytes a reservation could still take.</summary>
    public ulong Free => Range.Length.Value - Math.Min(Range.Length.Value, (used + 15) & ~15UL);

    /// <summary>Reserves 16-byte aligned room for <paramref name="size"/> bytes and returns its remote address.</summary>
    public Address Reserve(int size)
    {
        ulong start = (used + 15) & ~15UL;
        if (start + (ulong)size > Range.Length.Value)
        {
            throw new InvalidOperationException($"scratch area of {Range.Length} is too small for {size} more bytes");
        }
        used = start + (ulong)size;
        return Range.Start + new ByteCount(start);
    }

    /// <summary>Copies bytes into the target and returns where they are.</summary>
    public Address Put(ReadOnlySpan<byte> data)
    {
        var address = Reserve(data.Length);
        Memory.Write(address, data);
        return address;
    }

    public Address Put<T>(in T value) where T : unmanaged => Put(MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)));

    public Address PutArray<T>(ReadOnlySpan<T> values) where T : unmanaged => Put(MemoryMarshal.AsBytes(values));

    /// <summary>A NUL-terminated UTF-8 string, as system calls take paths.</summary>
    public Address PutString(string text) => Put(Interop.FileDescriptor.NullTerminated(text));

    public void InstallCode() => Memory.Write(CodeAddress, Code);

    /// <summary>
    /// What the area of a dump starts with, followed by the tool's pid and its start time (clock ticks after boot):
    /// a dump that died leaves its area in the process, and the next dump of that process removes it.
    /// </summary>
    public static ReadOnlySpan<byte> Signature => "CriuPS injection area\0"u8;

    /// <summary>Writes <see cref="Signature"/> and this process's identity at the start of the area.</summary>
    public void InstallSignature()
    {
        var stamp = new byte[CodeReserve];
        Signature.CopyTo(stamp);
        BinaryPrimitives.WriteInt32LittleEndian(stamp.AsSpan(Signature.Length), Environment.ProcessId);
        BinaryPrimitives.WriteUInt64LittleEndian(stamp.AsSpan(Signature.Length + 4), Proc.ProcStat.Read(Environment.ProcessId).StartTime);
        Memory.Write(CodeAddress, stamp);
    }
}
