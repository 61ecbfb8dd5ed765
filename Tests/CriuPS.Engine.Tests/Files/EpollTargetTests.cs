using CriuPS.Native.Interop;
using Tmds.Linux;

namespace CriuPS.Engine.Tests.Files;

/// <summary>kcmp's KCMP_EPOLL_TFD finds the file of a registration whose number was closed, under the number it has now.</summary>
public sealed unsafe class EpollTargetTests
{
    [Fact]
    public void FindsTheFileOfARegistrationUnderAnotherNumber()
    {
        int pid = Environment.ProcessId;
        using var epoll = Epoll.Create();
        int* ends = stackalloc int[2];
        Assert.Equal(0, LibC.pipe2(ends, O.CLOEXEC));
        using var write = new FileDescriptor(ends[1]);
        int added = ends[0];
        var ev = new epoll_event { events = 1, data = new epoll_data_t { u64 = 7 } };
        Assert.Equal(0, LibC.epoll_ctl(epoll.Value, Epoll.CtlAdd, added, &ev));
        using var kept = new FileDescriptor(LibC.dup(added));
        Assert.True(Kcmp.IsEpollTarget(pid, epoll.Value, added, 0));

        LibC.close(added);

        Assert.False(Kcmp.IsEpollTarget(pid, epoll.Value, added, 0));
        Assert.True(Kcmp.IsEpollTarget(pid, kept.Value, pid, epoll.Value, added, 0));
        Assert.False(Kcmp.IsEpollTarget(pid, write.Value, pid, epoll.Value, added, 0));
    }
}
