using CriuPS.Engine.Errors;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Dump;

/// <summary>
/// Makes an image directory appear complete or not at all: everything is written into a hidden sibling
/// directory (mode 0700: images hold process memory), which is renamed to the image path at the end, or removed
/// if the dump fails.
/// </summary>
internal sealed class ImageDirectoryTransaction
{
    private const uint RenameExchange = 2;

    private ImageDirectoryTransaction(string finalPath, string workPath, bool replace)
    {
        FinalPath = finalPath;
        WorkPath = workPath;
        this.replace = replace;
    }

    private readonly bool replace;

    public string FinalPath { get; }

    public string WorkPath { get; }

    public bool Committed { get; private set; }

    public static ImageDirectoryTransaction Begin(string imagePath, bool force)
    {
        var final = Path.GetFullPath(imagePath);
        if (File.Exists(final))
        {
            throw new CheckpointException(CheckpointErrorKind.ImagePathUnusable, $"The image path '{final}' is a file, not a directory.", final, "Choose a directory path.");
        }
        bool replace = false;
        if (Directory.Exists(final) && Directory.EnumerateFileSystemEntries(final).Any())
        {
            if (force && !File.Exists(Path.Combine(final, "inventory.img")))
            {
                throw new CheckpointException(
                    CheckpointErrorKind.ImagePathUnusable,
                    $"The directory '{final}' is not empty and holds no checkpoint image; -Force replaces only an image.",
                    final,
                    "Choose a new or empty directory.");
            }
            if (!force)
            {
                throw new CheckpointException(
                    CheckpointErrorKind.ImagePathUnusable,
                    $"The image directory '{final}' is not empty.",
                    final,
                    "Choose a new path, or use -Force to replace the existing image.");
            }
            replace = true;
        }
        var parent = Path.GetDirectoryName(final) ?? "/";
        Directory.CreateDirectory(parent);
        var work = Path.Combine(parent, $".{Path.GetFileName(final)}.criups-{Guid.NewGuid():N}");
        Directory.CreateDirectory(work, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(work, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return new ImageDirectoryTransaction(final, work, replace);
    }

    /// <summary>Puts the finished directory at the image path (atomically exchanging it with an image it replaces).</summary>
    public void Commit()
    {
        if (replace)
        {
            Exchange(WorkPath, FinalPath);
            Directory.Delete(WorkPath, recursive: true); // now the replaced image
        }
        else
        {
            if (Directory.Exists(FinalPath))
            {
                Directory.Delete(FinalPath); // empty, checked at the start
            }
            Directory.Move(WorkPath, FinalPath);
        }
        Committed = true;
    }

    /// <summary>Removes everything written so far.</summary>
    public void Abort()
    {
        if (!Committed && Directory.Exists(WorkPath))
        {
            Directory.Delete(WorkPath, recursive: true);
        }
    }

    private static unsafe void Exchange(string a, string b)
    {
        var pa = FileDescriptor.NullTerminated(a);
        var pb = FileDescriptor.NullTerminated(b);
        fixed (byte* x = pa)
        fixed (byte* y = pb)
        {
            const int AtFdCwd = -100;
            Syscall.Checked("renameat2(RENAME_EXCHANGE)", SyscallNumber.Renameat2, unchecked((ulong)AtFdCwd), (ulong)x, unchecked((ulong)AtFdCwd), (ulong)y, RenameExchange);
        }
    }
}
