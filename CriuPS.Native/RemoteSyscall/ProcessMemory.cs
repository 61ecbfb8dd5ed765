using System.Runtime.InteropServices;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using Tmds.Linux;

namespace CriuPS.Native.RemoteSyscall;

/// <summary>
/// Another process's memory through /proc/PID/mem. The kernel forces access (FOLL_FORCE), so this reaches
/// read-only and PROT_NONE areas too; the file stays bound to the address space it was opened on.
/// </summary>
public sealed unsafe class ProcessMemory : IDisposable
{
    private readonly FileDescriptor file;

    private ProcessMemory(int pid, FileDescriptor file)
    {
        ProcessId = pid;
        this.file = file;
    }

    public int ProcessId { get; }

    public static ProcessMemory Open(int pid) => new(pid, FileDescriptor.Open($"/proc/{pid}/mem", O.RDWR));

    /// <summary>Opens /proc/PID/mem only to read it (the memory of a process held stopped, served to its copy).</summary>
    public static ProcessMemory OpenForReading(int pid) => new(pid, FileDescriptor.Open($"/proc/{pid}/mem", O.RDONLY));

    public void Write(Address address, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            long done = 0;
            while (done < data.Length)
            {
                long n = (long)LibC.pwrite(file.Value, p + done, (size_t)(ulong)(data.Length - done), (long)(address.Value + (ulong)done));
                int errno = n < 0 ? LibC.errno : Errno.EIO;
                if (n <= 0 && errno == Errno.EIO)
                {
                    n = WriteWaitingForUserfaultfd(address + new ByteCount((ulong)done), p + done, (ulong)(data.Length - done));
                }
                if (n <= 0)
                {
                    throw new NativeException($"write to memory of {ProcessId} at {address + new ByteCount((ulong)done)}", errno);
                }
                done += n;
            }
        }
    }

    // A page that a userfaultfd write-protects (a background checkpoint protects the memory of the running process
    // ahead of its freeze, whose threads are then parked on their stacks) cannot be written through /proc/PID/mem:
    // that path may not wait for the handler (no FAULT_FLAG_ALLOW_RETRY), so the kernel fails it with EIO.
    // process_vm_writev waits for the handler like a write of the process would, and goes on once it is let go.
    // Returns the bytes written, or 0 when that fails too (a read-only page: only /proc/PID/mem forces access).
    private long WriteWaitingForUserfaultfd(Address address, byte* data, ulong length)
    {
        var local = new IoVec { Base = (ulong)data, Length = length };
        var remote = new IoVec { Base = address.Value, Length = length };
        try
        {
            return ProcessVm.Writev(ProcessId, new ReadOnlySpan<IoVec>(&local, 1), new ReadOnlySpan<IoVec>(&remote, 1));
        }
        catch (NativeException)
        {
            return 0;
        }
    }

    public void Read(Address address, Span<byte> data)
    {
        fixed (byte* p = data)
        {
            long done = 0;
            while (done < data.Length)
            {
                long n = (long)LibC.pread(file.Value, p + done, (size_t)(ulong)(data.Length - done), (long)(address.Value + (ulong)done));
                if (n <= 0)
                {
                    throw new NativeException($"read of memory of {ProcessId} at {address + new ByteCount((ulong)done)}", n < 0 ? LibC.errno : Errno.EIO);
                }
                done += n;
            }
        }
    }

    public byte[] Read(Address address, int length)
    {
        var data = new byte[length];
        Read(address, data);
        return data;
    }

    public T Read<T>(Address address) where T : unmanaged
    {
        T value;
        Read(address, new Span<byte>(&value, sizeof(T)));
        return value;
    }

    public void Write<T>(Address address, in T value) where T : unmanaged
    {
        fixed (T* p = &value)
        {
            Write(address, new ReadOnlySpan<byte>(p, sizeof(T)));
        }
    }

    public void WriteArray<T>(Address address, ReadOnlySpan<T> values) where T : unmanaged =>
        Write(address, MemoryMarshal.AsBytes(values));

    public T[] ReadArray<T>(Address address, int count) where T : unmanaged
    {
        var values = new T[count];
        Read(address, MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }

    public void Dispose() => file.Dispose();
}
