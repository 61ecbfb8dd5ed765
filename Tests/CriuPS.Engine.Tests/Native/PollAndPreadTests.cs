using CriuPS.Native.Interop;

namespace CriuPS.Engine.Tests.Native;

/// <summary>The poll(2) and pread(2) wrappers the background copy and the page scanner use.</summary>
public class PollAndPreadTests
{
    [Fact]
    public void PollSaysReadableOnlyOnceThereIsSomethingToRead()
    {
        using var eventfd = Eventfd.Create(0, O.CLOEXEC | O.NONBLOCK);
        Assert.False(Poll.Readable(eventfd, 10));
        Eventfd.Signal(eventfd);
        Assert.True(Poll.Readable(eventfd, 0));
    }

    [Fact]
    public void PreadReadsAtTheOffsetAndShortAtTheEnd()
    {
        var file = Path.Combine(Path.GetTempPath(), $"criups-pread-{Guid.NewGuid():N}");
        File.WriteAllBytes(file, Enumerable.Range(0, 100).Select(i => (byte)i).ToArray());
        try
        {
            using var fd = FileDescriptor.Open(file, O.RDONLY | O.CLOEXEC);
            var buffer = new byte[16];
            Assert.Equal((16L, 0), Pread.Read(fd, buffer, 40));
            Assert.Equal(Enumerable.Range(40, 16).Select(i => (byte)i), buffer);
            Assert.Equal((4L, 0), Pread.Read(fd, buffer, 96));
            Assert.Equal(new byte[] { 96, 97, 98, 99 }, buffer[..4]);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void PreadSaysTheErrno()
    {
        var (read, write) = FileDescriptor.Pipe(O.CLOEXEC);
        using (read)
        using (write)
        {
            Assert.Equal((-1L, Errno.ESPIPE), Pread.Read(read, new byte[8], 0));
        }
    }
}
