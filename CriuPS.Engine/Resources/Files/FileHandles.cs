using CriuPS.Engine.Errors;
using CriuPS.Engine.Privileges;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// Finds a file again by the handle the kernel showed for it (inotify watches, fanotify marks): open_by_handle_at on a mount of its
/// filesystem, found by device number. Root has CAP_DAC_READ_SEARCH, which the call needs; another user gets an
/// InsufficientPrivilege error that names it.
/// </summary>
internal static class FileHandles
{
    /// <summary>
    /// An O_PATH descriptor of the file on device <paramref name="major"/>:<paramref name="minor"/>, or null and why it
    /// cannot be found (<paramref name="handle"/> is null when the kernel showed none: the filesystem gives none).
    /// </summary>
    public static FileDescriptor? Open(uint major, uint minor, int type, byte[]? handle, out string why)
    {
        if (handle is null)
        {
            why = "its filesystem gives no file handles";
            return null;
        }
        why = $"no filesystem on device {major}:{minor} is mounted here";
        foreach (var point in MountInfo.MountPointsOf(major, minor))
        {
            // open_by_handle_at does not take an O_PATH descriptor for the mount; file bind mounts are skipped.
            using var mount = FileDescriptor.TryOpen(point, O.RDONLY | O.DIRECTORY, out _);
            if (mount is null)
            {
                continue;
            }
            var file = OpenByHandleAt.TryOpen(mount, type, handle, O.PATH, out int errno);
            if (file is not null)
            {
                return file;
            }
            if (errno == Errno.EPERM)
            {
                throw MissingPrivilege.For(Capability.DacReadSearch, $"Finding a file watched with inotify or fanotify by its handle (open_by_handle_at on {point})",
                    $"{major}:{minor}");
            }
            why = errno == Errno.ESTALE ? "it no longer exists" : $"open_by_handle_at failed: {Errno.Describe(errno)}";
        }
        return null;
    }

    /// <summary>A handle as CRIU stores it (fh_entry): its bytes in 16 little-endian 64-bit words, zero-padded.</summary>
    public static Images.Proto.FhEntry ToEntry(int type, byte[] handle, string? path)
    {
        var words = new byte[16 * sizeof(ulong)];
        handle.CopyTo(words, 0);
        var entry = new Images.Proto.FhEntry { Bytes = (uint)handle.Length, Type = (uint)type };
        for (int i = 0; i < 16; i++)
        {
            entry.Handle.Add(BitConverter.ToUInt64(words, i * sizeof(ulong)));
        }
        if (path is not null)
        {
            entry.Path = path;
        }
        return entry;
    }

    /// <summary>The handle bytes of a saved fh_entry.</summary>
    public static byte[] FromEntry(Images.Proto.FhEntry entry, string image)
    {
        var words = entry.Handle.SelectMany(BitConverter.GetBytes).ToArray();
        return entry.Bytes <= words.Length ? words[..(int)entry.Bytes] : throw new CheckpointException(
            CheckpointErrorKind.ImageCorrupt, $"{image}: a file handle of {entry.Bytes} bytes holds only {words.Length}.", image);
    }
}
