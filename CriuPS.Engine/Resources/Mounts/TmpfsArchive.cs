using System.Formats.Tar;
using System.IO.Compression;
using CriuPS.Engine.Errors;
using CriuPS.Native.Interop;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Mounts;

/// <summary>
/// A tmpfs's files as CRIU keeps them (tmpfs-dev-N.tar.gz, a gzip'd tar of the mount's root): modes, owners,
/// modification times, symbolic links, device nodes, FIFOs and hard links. Saved through the namespace's view (a path
/// under /proc/PID/root of one of its processes) and extracted into the new tmpfs the same way. A mount stacked on a
/// directory of the tmpfs is not walked into: its mount point is kept, empty, for the mount to land on.
/// </summary>
internal static class TmpfsArchive
{
    /// <summary>Writes the files under <paramref name="root"/> (whose filesystem is <paramref name="device"/>) to <paramref name="output"/>.</summary>
    public static void Save(string root, ulong device, Stream output)
    {
        using var gzip = new GZipStream(output, CompressionLevel.Fastest);
        using var tar = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: false);
        var linked = new Dictionary<ulong, string>();
        // The root first, as tar -C ROOT . writes it: its mode and owner, and an archive that is never empty (an
        // empty tmpfs, runc's over /proc/acpi, would give a gzip stream with no tar in it).
        var top = FileStatus.Of(root);
        tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, ".")
        {
            Mode = (UnixFileMode)(top.Mode & 0xFFF), Uid = (int)top.Uid, Gid = (int)top.Gid,
            ModificationTime = DateTimeOffset.FromUnixTimeMilliseconds(top.ModifyTimeNs / 1_000_000),
        });
        Walk(root, ".", device, tar, linked);
    }

    private static void Walk(string root, string relative, ulong device, TarWriter tar, Dictionary<ulong, string> linked)
    {
        foreach (var path in Directory.EnumerateFileSystemEntries(Path.Combine(root, relative)).Order(StringComparer.Ordinal))
        {
            string name = Path.Combine(relative, Path.GetFileName(path));
            var status = FileStatus.OfLink(path);
            bool mountPoint = status.Device != device;
            var entry = new PaxTarEntry(TypeOf(status), name)
            {
                Mode = (UnixFileMode)(status.Mode & 0xFFF),
                Uid = (int)status.Uid,
                Gid = (int)status.Gid,
                ModificationTime = DateTimeOffset.FromUnixTimeMilliseconds(status.ModifyTimeNs / 1_000_000),
            };
            if (mountPoint)
            {
                // Another mount covers it: its mount point alone, as a directory or an empty file for a file bound over it.
                entry = new PaxTarEntry(status.Type == FileStatus.Directory ? TarEntryType.Directory : TarEntryType.RegularFile, name) { Mode = entry.Mode };
                tar.WriteEntry(entry);
                continue;
            }
            if (status.Type != FileStatus.Directory && linked.TryGetValue(status.Inode, out var first))
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = first, Mode = entry.Mode, Uid = entry.Uid, Gid = entry.Gid });
                continue;
            }
            linked[status.Inode] = name;
            switch (status.Type)
            {
                case FileStatus.Regular:
                    using (var data = File.OpenRead(path))
                    {
                        entry.DataStream = data;
                        tar.WriteEntry(entry);
                    }
                    break;
                case FileStatus.Symlink:
                    entry.LinkName = new FileInfo(path).LinkTarget ?? "";
                    tar.WriteEntry(entry);
                    break;
                case FileStatus.CharDevice or FileStatus.BlockDevice:
                    entry.DeviceMajor = (int)status.RawDeviceMajor;
                    entry.DeviceMinor = (int)status.RawDeviceMinor;
                    tar.WriteEntry(entry);
                    break;
                case FileStatus.Directory:
                    tar.WriteEntry(entry);
                    Walk(root, name, device, tar, linked);
                    break;
                case FileStatus.Fifo:
                    tar.WriteEntry(entry);
                    break;
                default:
                    break; // a socket's file: its socket is saved, or not, by the socket's owner
            }
        }
    }

    private static TarEntryType TypeOf(FileStatus status) => status.Type switch
    {
        FileStatus.Directory => TarEntryType.Directory,
        FileStatus.Symlink => TarEntryType.SymbolicLink,
        FileStatus.CharDevice => TarEntryType.CharacterDevice,
        FileStatus.BlockDevice => TarEntryType.BlockDevice,
        FileStatus.Fifo => TarEntryType.Fifo,
        _ => TarEntryType.RegularFile,
    };

    /// <summary>
    /// Extracts the archive <paramref name="file"/> into <paramref name="root"/> (an empty tmpfs), with each entry's
    /// owner, mode and time; ImageCorrupt naming the file when it is not such an archive or names a path outside.
    /// </summary>
    public static void Extract(string file, string root)
    {
        var directories = new List<(string Path, DateTimeOffset Time)>();
        try
        {
            using var gzip = new GZipStream(File.OpenRead(file), CompressionMode.Decompress);
            using var tar = new TarReader(gzip);
            while (tar.GetNextEntry() is { } entry)
            {
                if (entry.EntryType is TarEntryType.ExtendedAttributes or TarEntryType.GlobalExtendedAttributes)
                {
                    continue;
                }
                string path = Inside(root, entry.Name, file);
                Create(entry, path, root, file);
                if (entry.EntryType == TarEntryType.Directory)
                {
                    directories.Add((path, entry.ModificationTime));
                }
            }
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{file}: this is not the tar.gz of a tmpfs: {e.Message}", file);
        }
        // Last, deepest first: creating a directory's entries changed its time.
        foreach (var (path, time) in Enumerable.Reverse(directories))
        {
            Directory.SetLastWriteTimeUtc(path, time.UtcDateTime);
        }
    }

    private static void Create(TarEntry entry, string path, string root, string file)
    {
        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                Directory.CreateDirectory(path);
                break;
            case TarEntryType.RegularFile or TarEntryType.V7RegularFile:
                using (var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
                {
                    entry.DataStream?.CopyTo(output);
                }
                break;
            case TarEntryType.SymbolicLink:
                File.CreateSymbolicLink(path, entry.LinkName);
                break;
            case TarEntryType.HardLink:
                DirectoryEntry.Link(Inside(root, entry.LinkName, file), path);
                break;
            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo:
                MakeNode(entry, path);
                break;
            default:
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{file}: entry '{entry.Name}' is of a kind a tmpfs archive does not hold ({entry.EntryType}).", file);
        }
        SetOwnerAndMode(entry, path);
        if (entry.EntryType is not (TarEntryType.SymbolicLink or TarEntryType.Directory or TarEntryType.HardLink))
        {
            File.SetLastWriteTimeUtc(path, entry.ModificationTime.UtcDateTime);
        }
    }

    // A name of the archive, under the root: one that climbs out ("../x", "/x") is damage, never followed.
    private static string Inside(string root, string name, string file)
    {
        var full = Path.GetFullPath(Path.Combine(root, name));
        if (full != root && !full.StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{file}: entry '{name}' names a path outside the tmpfs.", file);
        }
        return full;
    }

    private static void MakeNode(TarEntry entry, string path)
    {
        uint type = entry.EntryType switch
        {
            TarEntryType.CharacterDevice => FileStatus.CharDevice,
            TarEntryType.BlockDevice => FileStatus.BlockDevice,
            _ => FileStatus.Fifo,
        };
        ulong device = entry is PosixTarEntry posix ? Makedev((uint)posix.DeviceMajor, (uint)posix.DeviceMinor) : 0;
        DirectoryEntry.Mknod(path, type | ((uint)entry.Mode & 0xFFF), device);
    }

    private static void SetOwnerAndMode(TarEntry entry, string path)
    {
        PathAttributes.Lchown(path, (uint)entry.Uid, (uint)entry.Gid);
        if (entry.EntryType != TarEntryType.SymbolicLink)
        {
            PathAttributes.Chmod(path, (uint)entry.Mode & 0xFFF);
        }
    }

    // glibc's makedev.
    private static ulong Makedev(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((major & 0xfffUL) << 8) | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xffUL);
}
