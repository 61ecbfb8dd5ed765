using System.Buffers;

namespace CriuPS.Native.Interop;

/// <summary>process_vm_readv(2) / process_vm_writev(2): copy between this process and another without stopping it.</summary>
public static unsafe class ProcessVm
{
    /// <summary>Reads remote ranges into local ranges; returns the bytes copied (a short count stops at the first failing page).</summary>
    public static long Readv(int pid, ReadOnlySpan<IoVec> local, ReadOnlySpan<IoVec> remote)
    {
        fixed (IoVec* l = local)
        fixed (IoVec* r = remote)
        {
            return Syscall.Checked($"process_vm_readv({pid})", SystemCall.ProcessVmReadv, (ulong)pid, (ulong)l, (ulong)local.Length, (ulong)r, (ulong)remote.Length, 0);
        }
    }

    /// <summary>
    /// Reads remote ranges into <paramref name="buffer"/>: <paramref name="placement"/>[i] says where in it range i goes
    /// (Base: an offset into the buffer; Length: as the range's). Returns the bytes copied, as <see cref="Readv"/>.
    /// </summary>
    public static long ReadvInto(int pid, byte[] buffer, ReadOnlySpan<IoVec> placement, ReadOnlySpan<IoVec> remote)
    {
        var local = ArrayPool<IoVec>.Shared.Rent(placement.Length);
        try
        {
            fixed (byte* start = buffer)
            {
                for (int i = 0; i < placement.Length; i++)
                {
                    if (placement[i].Base + placement[i].Length > (ulong)buffer.Length)
                    {
                        throw new ArgumentOutOfRangeException(nameof(placement), $"{placement[i].Length} bytes at {placement[i].Base} reach past the {buffer.Length}-byte buffer.");
                    }
                    local[i] = new IoVec { Base = (ulong)start + placement[i].Base, Length = placement[i].Length };
                }
                return Readv(pid, local.AsSpan(0, placement.Length), remote);
            }
        }
        finally
        {
            ArrayPool<IoVec>.Shared.Return(local);
        }
    }

    public static long Writev(int pid, ReadOnlySpan<IoVec> local, ReadOnlySpan<IoVec> remote)
    {
        fixed (IoVec* l = local)
        fixed (IoVec* r = remote)
        {
            return Syscall.Checked($"process_vm_writev({pid})", SystemCall.ProcessVmWritev, (ulong)pid, (ulong)l, (ulong)local.Length, (ulong)r, (ulong)remote.Length, 0);
        }
    }
}
