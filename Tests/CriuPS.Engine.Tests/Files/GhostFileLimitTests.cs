using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Tests.Images;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Tests.Files;

/// <summary>The ghost file limit: a deleted file the process still has open is saved up to that much disk space.</summary>
public class GhostFileLimitTests
{
    private const int GhostBytes = 64 * 1024;

    [Fact]
    public void ADeletedFileLargerThanTheLimitIsRefusedBeforeFreezing()
    {
        using var work = new TempDirectory();
        using var target = StartHoldingDeletedFile(work.PathOf("big.dat"));
        var imagePath = work.PathOf("image");

        var error = Assert.Throws<CheckpointException>(() => DumpPipeline.Run(
            new DumpOptions { ProcessId = target.Pid, ImagePath = imagePath, GhostFileLimit = 16 * 1024 },
            NullObserver.Instance));

        Assert.Equal(CheckpointErrorKind.Unsupported, error.Kind);
        Assert.Contains("nothing was frozen", error.Message);
        Assert.Contains($"fd 3: open file '{work.PathOf("big.dat")} (deleted)' was deleted and takes {GhostBytes} bytes on disk, more than the ghost file limit of 16384 bytes (-GhostFileLimit)", error.Message);
        Assert.False(Directory.Exists(imagePath));
        Assert.Equal('S', target.State);
        Assert.Contains("TracerPid:\t0", File.ReadAllText($"/proc/{target.Pid}/status"));
    }

    [Fact]
    public void ADeletedFileWithinTheLimitIsSavedAsAGhostFile()
    {
        using var work = new TempDirectory();
        using var target = StartHoldingDeletedFile(work.PathOf("small.dat"));
        var imagePath = work.PathOf("image");

        DumpPipeline.Run(new DumpOptions { ProcessId = target.Pid, ImagePath = imagePath, LeaveRunning = true }, NullObserver.Instance);

        Assert.Equal(DumpOptions.DefaultGhostFileLimit, new DumpOptions { ProcessId = 1, ImagePath = "x" }.GhostFileLimit);
        var ghost = new FileInfo(Path.Combine(imagePath, "ghost-file-1.img"));
        Assert.True(ghost.Exists);
        Assert.True(ghost.Length > GhostBytes);
        Assert.True(File.Exists(Path.Combine(imagePath, "remap-fpath.img")));
    }

    // A shell that opens a file on fd 3, fills it with data (no holes), deletes it and becomes `sleep`, fd 3 still open.
    private static TestProcess StartHoldingDeletedFile(string path)
    {
        var process = TestProcess.Start("/bin/sh", "-c",
            $"exec 3<>'{path}'; head -c {GhostBytes} /dev/urandom >&3; sync '{path}'; rm '{path}'; exec sleep 1000");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!File.ReadAllText($"/proc/{process.Pid}/cmdline").StartsWith("sleep", StringComparison.Ordinal) || process.State != 'S')
        {
            if (DateTime.UtcNow > deadline)
            {
                process.Dispose();
                throw new TimeoutException("the shell did not become sleep");
            }
            Thread.Sleep(5);
        }
        return process;
    }
}
