using CriuPS.Engine.Errors;
using CriuPS.Engine.Privileges;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Dump;

/// <summary>
/// Makes an image directory appear complete or not at all: everything is written into a hidden sibling
/// directory (mode 0700: images hold process memory), which is renamed to the image path at the end, or removed
/// if the dump fails. The hidden directory is flock()ed while in use, so that one left behind by a process that
/// died mid-dump (a killed session, a page server killed while receiving) is recognised and removed by the next
/// dump or page server for that path.
/// </summary>
internal sealed class ImageDirectoryTransaction : IImageOutput
{
    private const string WorkTag = ".criups-";
    private const string Unlocked = ".new"; // a work directory not locked yet: never taken for a stale one
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private ImageDirectoryTransaction(string finalPath, string workPath, bool replace, FileDescriptor workLock)
    {
        FinalPath = finalPath;
        WorkPath = workPath;
        this.replace = replace;
        this.workLock = workLock;
    }

    private readonly bool replace;
    private readonly FileDescriptor workLock;

    public string FinalPath { get; }

    public string WorkPath { get; }

    public bool Committed { get; private set; }

    public string Location => FinalPath;

    public string LogPath => Path.Combine(Committed ? FinalPath : WorkPath, "dump.log");

    public static ImageDirectoryTransaction Begin(string imagePath, bool force)
    {
        var final = Path.GetFullPath(imagePath);
        try
        {
            return BeginAt(final, force);
        }
        catch (UnauthorizedAccessException e)
        {
            // The path itself (an image to replace) or a directory on the way; else its directory, which the image joins.
            throw PathAccess.Denial(final, "the image path", Faccessat.Read | Faccessat.Search, e)
                ?? PathAccess.Denied(Path.GetDirectoryName(final) ?? "/", "the directory of the image path", Faccessat.Write | Faccessat.Search, e);
        }
    }

    private static ImageDirectoryTransaction BeginAt(string final, bool force)
    {
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
        RemoveStale(final);
        // Created under a name the sweep ignores, locked, then given its real name: never swept while in use.
        var work = Path.Combine(parent, $".{Path.GetFileName(final)}{WorkTag}{Guid.NewGuid():N}");
        Directory.CreateDirectory(work + Unlocked, OwnerOnly);
        File.SetUnixFileMode(work + Unlocked, OwnerOnly);
        var workLock = FileDescriptor.Open(work + Unlocked, O.RDONLY | O.DIRECTORY);
        Flock.Lock(workLock, Flock.LOCK_EX);
        Directory.Move(work + Unlocked, work);
        return new ImageDirectoryTransaction(final, work, replace, workLock);
    }

    /// <summary>
    /// Removes the hidden work directories of dumps into <paramref name="imagePath"/> whose writer died: those
    /// nobody holds the lock of.
    /// </summary>
    public static void RemoveStale(string imagePath)
    {
        var final = Path.GetFullPath(imagePath);
        var parent = Path.GetDirectoryName(final) ?? "/";
        if (!Directory.Exists(parent))
        {
            return;
        }
        foreach (var candidate in Directory.EnumerateDirectories(parent, $".{Path.GetFileName(final)}{WorkTag}*"))
        {
            if (candidate.EndsWith(Unlocked, StringComparison.Ordinal))
            {
                continue;
            }
            using var probe = FileDescriptor.TryOpen(candidate, O.RDONLY | O.DIRECTORY, out _);
            if (probe is not null && Flock.Lock(probe, Flock.LOCK_EX | Flock.LOCK_NB) == 0)
            {
                Directory.Delete(candidate, recursive: true);
            }
        }
    }

    public Stream Create(string fileName) =>
        new FileStream(Path.Combine(Committed ? FinalPath : WorkPath, fileName), new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            // Most images are a few KiB (a core-TID.img per thread); larger writes (a pages batch, mm.img of 10,000
            // areas) bypass the buffer. A 64 KiB buffer per file was 5 MiB allocated for 78 files of 64 threads.
            BufferSize = 4 << 10,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });

    /// <summary>Puts the finished directory at the image path (atomically exchanging it with an image it replaces).</summary>
    public void Commit()
    {
        if (replace)
        {
            Renameat2.Exchange(WorkPath, FinalPath);
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
        workLock.Dispose();
    }

    public void Finish()
    {
    }

    /// <summary>Removes everything written so far; a dump.log written there moves to the temporary directory.</summary>
    public string? Abort()
    {
        string? kept = null;
        if (!Committed && Directory.Exists(WorkPath))
        {
            var log = Path.Combine(WorkPath, "dump.log");
            if (File.Exists(log))
            {
                kept = Path.Combine(Path.GetTempPath(), $"criups-dump-{Path.GetFileName(FinalPath)}-{DateTime.Now:yyyyMMdd-HHmmss}.log");
                File.Move(log, kept, overwrite: true);
            }
            Directory.Delete(WorkPath, recursive: true);
        }
        workLock.Dispose();
        return kept;
    }
}
