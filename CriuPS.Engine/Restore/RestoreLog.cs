using CriuPS.Engine.Images.Digests;
using CriuPS.Engine.Logging;

namespace CriuPS.Engine.Restore;

/// <summary>restore.log: where it goes, and what it says of the images' verification.</summary>
internal static class RestoreLog
{
    // restore.log goes into the image directory, or next to it in /tmp when that is read-only.
    public static void AttachLog(EngineLog log, string directory, RestoreOptions options)
    {
        var path = options.LogPath ?? Path.Combine(directory, "restore.log");
        try
        {
            log.AttachFile(path);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            var fallback = Path.Combine(Path.GetTempPath(), $"criups-restore-{Path.GetFileName(directory)}-{DateTime.Now:yyyyMMdd-HHmmss}.log");
            log.AttachFile(fallback);
            log.Warning($"'{path}' is not writable; the restore log is '{fallback}'.");
        }
    }

    // What was verified, and what could not be (images without digests are restored as CRIU restores them).
    public static void LogVerification(EngineLog log, ChainVerification verified, bool lazy)
    {
        foreach (var directory in verified.Directories)
        {
            log.Write(directory.Manifest is null
                ? $"{directory.Directory} has no {DigestManifest.FileName} (an image written by CRIU, or whose digests were removed): restored unverified"
                : $"{directory.Directory}: {directory.Files} files ({directory.Bytes >> 20} MiB) verified against {DigestManifest.FileName}; the pages files' sizes too, their blocks {(lazy ? "as they are read" : "beside the restore (step \"page digests\")")}");
        }
        log.Detail($"images verified in {verified.Elapsed.TotalMilliseconds:F1} ms");
    }
}
