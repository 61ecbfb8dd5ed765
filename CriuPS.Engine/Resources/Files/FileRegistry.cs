using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// The file table of an image (files.img): one entry per open file description, and one per file reached other
/// than by a descriptor (mapped files, the executable, cwd and root). Descriptors that share a description
/// (dup, fork) share an id, found with kcmp(KCMP_FILE).
/// </summary>
internal sealed class FileRegistry
{
    private readonly List<FileEntry> entries = new();
    private readonly Dictionary<(string Path, int Flags), uint> byPath = new();
    private readonly List<(int Pid, int Fd, ulong Device, ulong Inode, uint Id)> descriptions = new();
    private uint nextId = 1;

    public IReadOnlyList<FileEntry> Entries => entries;

    public uint NewId() => nextId++;

    public void Add(FileEntry entry) => entries.Add(entry);

    /// <summary>A regular file (or directory) reached by path, not by a descriptor: shared by every user with the same flags.</summary>
    public uint Path(string path, int flags, Func<uint, FileEntry> create)
    {
        if (!byPath.TryGetValue((path, flags), out var id))
        {
            id = NewId();
            byPath[(path, flags)] = id;
            entries.Add(create(id));
        }
        return id;
    }

    /// <summary>The id of an open file description already in the table, if <paramref name="fd"/> of <paramref name="pid"/> shares it.</summary>
    public uint? FindDescription(int pid, int fd, ulong device, ulong inode)
    {
        foreach (var d in descriptions)
        {
            if (d.Device == device && d.Inode == inode && Kcmp.Compare(pid, d.Pid, Kcmp.File, (ulong)fd, (ulong)d.Fd) == 0)
            {
                return d.Id;
            }
        }
        return null;
    }

    /// <summary>Remembers which description <paramref name="id"/> stands for, so later descriptors can find it.</summary>
    public void RememberDescription(int pid, int fd, ulong device, ulong inode, uint id) =>
        descriptions.Add((pid, fd, device, inode, id));
}
