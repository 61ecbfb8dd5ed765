using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>open_by_handle_at(2): opens a file by the handle the kernel gave for it, on a mount of its filesystem.</summary>
public static unsafe class OpenByHandleAt
{
    /// <summary>Opens the file (needs CAP_DAC_READ_SEARCH); null and the errno when the handle finds nothing (ESTALE: the file is gone).</summary>
    public static FileDescriptor? TryOpen(FileDescriptor mount, int handleType, ReadOnlySpan<byte> handle, int flags, out int errno)
    {
        byte* buffer = stackalloc byte[sizeof(file_handle) + handle.Length];
        var header = (file_handle*)buffer;
        header->handle_bytes = (uint)handle.Length;
        header->handle_type = handleType;
        handle.CopyTo(new Span<byte>(buffer + sizeof(file_handle), handle.Length));
        int fd = LibC.open_by_handle_at(mount.Value, header, flags | O.CLOEXEC);
        errno = fd < 0 ? LibC.errno : 0;
        return fd < 0 ? null : new FileDescriptor(fd);
    }
}
