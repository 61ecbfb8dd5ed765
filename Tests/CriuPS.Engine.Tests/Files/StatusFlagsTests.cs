using CriuPS.Engine.Errors;
using CriuPS.Engine.Resources.Files;
using CriuPS.Native.Interop;
using Tmds.Linux;

namespace CriuPS.Engine.Tests.Files;

/// <summary>The status flags the engine gives a recreated description: exactly the saved ones, but O_ASYNC.</summary>
public sealed unsafe class StatusFlagsTests
{
    private const int Changeable = O.APPEND | O.ASYNC | O.DIRECT | O.NOATIME | O.NONBLOCK;

    [Fact]
    public void SetsAndClearsTheSavedFlagsOfAPipeEndButLeavesOAsyncToTheProcess()
    {
        var (read, write) = Pipe();
        using (read)
        using (write)
        {
            Fcntl.Call(read, Fcntl.F_SETFL, O.NONBLOCK);
            StatusFlags.Restore(read, (uint)(O.RDONLY | O.DIRECT | O.ASYNC), "the read end");
            Assert.Equal(O.DIRECT, Fcntl.Call(read, Fcntl.F_GETFL) & Changeable);

            StatusFlags.Restore(write, (uint)(O.WRONLY | O.NONBLOCK), "the write end");
            Assert.Equal(O.NONBLOCK, Fcntl.Call(write, Fcntl.F_GETFL) & Changeable);
            Assert.Equal(O.WRONLY, Fcntl.Call(write, Fcntl.F_GETFL) & O.ACCMODE);
        }
    }

    [Fact]
    public void SaysWhichFlagsADescriptionCannotTake()
    {
        using var file = FileDescriptor.Open("/proc/self/stat", O.RDONLY);
        var error = Assert.Throws<CheckpointException>(() => StatusFlags.Restore(file, (uint)O.DIRECT, "fd 7 of process 42 (Reg)"));
        Assert.Equal(CheckpointErrorKind.RestoreFailed, error.Kind);
        Assert.Contains("The status flags O_DIRECT of fd 7 of process 42 (Reg) cannot be set again", error.Message);
    }

    private static (FileDescriptor Read, FileDescriptor Write) Pipe()
    {
        int* ends = stackalloc int[2];
        Assert.Equal(0, LibC.pipe2(ends, O.CLOEXEC));
        return (new FileDescriptor(ends[0]), new FileDescriptor(ends[1]));
    }
}
