using System.Formats.Tar;
using System.IO.Compression;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Resources.Mounts;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Tests.Mounts;

/// <summary>A tmpfs's files through the archive and back: contents, modes, owners, times and links as they were.</summary>
public sealed class TmpfsArchiveTests : IDisposable
{
    private readonly string from = Directory.CreateTempSubdirectory("tmpfs-from-").FullName;
    private readonly string to = Directory.CreateTempSubdirectory("tmpfs-to-").FullName;
    private readonly string archive = Path.GetTempFileName();

    public void Dispose()
    {
        Directory.Delete(from, true);
        Directory.Delete(to, true);
        File.Delete(archive);
    }

    [Fact]
    public void FilesComeBackWithModesOwnersTimesAndLinks()
    {
        Directory.CreateDirectory(Path.Combine(from, "sub"));
        File.SetUnixFileMode(Path.Combine(from, "sub"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var file = Path.Combine(from, "sub", "file");
        File.WriteAllText(file, "tmpfs data");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.GroupRead);
        var time = new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(file, time);
        File.CreateSymbolicLink(Path.Combine(from, "link"), "sub/file");
        var linked = TestProcess.Run("/bin/ln", file, Path.Combine(from, "hard"));
        Assert.True(linked.Exited && linked.ExitCode == 0, $"ln: {linked}");
        using (var output = File.Create(archive))
        {
            TmpfsArchive.Save(from, FileStatus.Of(from).Device, output);
        }

        TmpfsArchive.Extract(archive, to);

        var restored = Path.Combine(to, "sub", "file");
        Assert.Equal("tmpfs data", File.ReadAllText(restored));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.GroupRead, File.GetUnixFileMode(restored));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.Combine(to, "sub")));
        Assert.Equal(time, File.GetLastWriteTimeUtc(restored));
        Assert.Equal("sub/file", new FileInfo(Path.Combine(to, "link")).LinkTarget);
        Assert.Equal(FileStatus.Of(restored).Inode, FileStatus.Of(Path.Combine(to, "hard")).Inode);
    }

    [Fact]
    public void AnEntryThatClimbsOutOfTheTmpfsIsImageCorruptNamingTheFile()
    {
        using (var output = File.Create(archive))
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Pax))
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "../outside"));
        }
        var e = Assert.Throws<CheckpointException>(() => TmpfsArchive.Extract(archive, to));
        Assert.Equal(CheckpointErrorKind.ImageCorrupt, e.Kind);
        Assert.Contains(archive, e.Message);
    }

    [Fact]
    public void BytesThatAreNoArchiveAreImageCorrupt()
    {
        File.WriteAllBytes(archive, [1, 2, 3, 4]);
        Assert.Equal(CheckpointErrorKind.ImageCorrupt, Assert.Throws<CheckpointException>(() => TmpfsArchive.Extract(archive, to)).Kind);
    }
}
