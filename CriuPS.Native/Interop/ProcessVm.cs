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
            return Syscall.Checked($"process_vm_readv({pid})", SyscallNumber.ProcessVmReadv, (ulong)pid, (ulong)l, (ulong)local.Length, (ulong)r, (ulong)remote.Length, 0);
        }
    }

    public static long Writev(int pid, ReadOnlySpan<IoVec> local, ReadOnlySpan<IoVec> remote)
    {
        fixed (IoVec* l = local)
        fixed (IoVec* r = remote)
        {
            return Syscall.Checked($"process_vm_writev({pid})", SyscallNumber.ProcessVmWritev, (ulong)pid, (ulong)l, (ulong)local.Length, (ulong)r, (ulong)remote.Length, 0);
        }
    }
}
