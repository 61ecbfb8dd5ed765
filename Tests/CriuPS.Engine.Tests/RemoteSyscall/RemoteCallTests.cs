using CriuPS.Native.Arch;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Tests.RemoteSyscall;

/// <summary>The typed calls of the injection layer: the registers they load, and what they do in a real process.</summary>
public class RemoteCallTests
{
    [Fact]
    public void TypedCallsLoadTheArgumentsTheEngineOnceWroteByHand()
    {
        var range = new AddressRange(0x7000_0000_0000, 0x7000_0000_3000);
        // The raw forms are those the engine's call sites had before they were typed: a change of encoding fails here.
        Assert.Equal(new RemoteCall(SystemCall.Dup3, 5, 7, (ulong)O.CLOEXEC), RemoteCall.Dup3(5, 7, closeOnExec: true).Call);
        Assert.Equal(new RemoteCall(SystemCall.Dup3, 5, 7, 0), RemoteCall.Dup3(5, 7, closeOnExec: false).Call);
        Assert.Equal(new RemoteCall(SystemCall.Fcntl, 3, Fcntl.F_DUPFD_CLOEXEC, 40), RemoteCall.DuplicateCloseOnExec(3, 40).Call);
        Assert.Equal(new RemoteCall(SystemCall.Openat, unchecked((ulong)Fcntl.AT_FDCWD), 0x1000, (ulong)(O.RDONLY | O.CLOEXEC)), RemoteCall.Open(new Address(0x1000), O.RDONLY | O.CLOEXEC).Call);
        Assert.Equal(new RemoteCall(SystemCall.Mmap, range.Start.Value, 0x3000, Mman.PROT_READ, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS | Mman.MAP_FIXED, unchecked((ulong)-1), 0),
            RemoteCall.Mmap(range, Mman.PROT_READ, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS | Mman.MAP_FIXED, fd: -1, offset: 0).Call);
        Assert.Equal(new RemoteCall(SystemCall.Mremap, range.Start.Value, 0x3000, 0x3000, Mman.MREMAP_MAYMOVE | Mman.MREMAP_FIXED, 0x9000),
            RemoteCall.MoveArea(range, new Address(0x9000)).Call);
        Assert.Equal(new RemoteCall(SystemCall.RtSigaction, 10, 0, 0x2000, 8), RemoteCall.RtSigaction(10, Address.Null, new Address(0x2000)));
        Assert.Equal(new RemoteCall(SystemCall.Prctl, 35, 14, 0x3000, 104, 0), RemoteCall.SetMmMap(new Address(0x3000), new ByteCount(104)));
        Assert.Equal(new RemoteCall(SystemCall.Prctl, 47, 2, 21), RemoteCall.RaiseAmbientCapability(21));
        Assert.Equal(new RemoteCall(SystemCall.Setpgid, 0, 12), RemoteCall.JoinProcessGroup(12));
        Assert.Equal(new RemoteCall(SystemCall.Wait4, 12, 0, (ulong)Wait4.WALL, 0), RemoteCall.Wait4(12, Wait4.WALL));
        // Images keep clock and timer ids as uint32: a CPU clock's negative id goes in zero-extended, as it always did.
        Assert.Equal(new RemoteCall(SystemCall.TimerCreate, 0xfffffffe, 0x10, 0x20), RemoteCall.TimerCreate(unchecked((int)0xfffffffe), new Address(0x10), new Address(0x20)));
        Assert.Equal(new RemoteCall(SystemCall.CloseRange, 4, uint.MaxValue, 0), RemoteCall.CloseRange(4, uint.MaxValue));
    }

    [Fact]
    public void TypedCallsRunInAStoppedProcessAndGiveBackDescriptorsAndAddresses()
    {
        using var target = TestProcess.StartSleeper();
        var thread = Tracee.Seize(target.Pid, target.Pid, PtraceOptions.TraceSysGood | PtraceOptions.ExitKill);
        thread.InterruptAndWait();
        var memory = ProcessMemory.Open(target.Pid);
        string file = Path.GetTempFileName();
        try
        {
            var injection = Injection.Begin(thread, memory, SmapsParser.Read(target.Pid), new ByteCount(64 * 1024));
            var caller = injection.Caller;
            var scratch = injection.Scratch;

            // A path put in the scratch area by the call itself; the result is the target's descriptor.
            scratch.Reset();
            int fd = caller.Checked($"open of {file}", RemoteCall.Open(scratch, file, O.RDONLY | O.CLOEXEC));
            Assert.Equal(file, new FileInfo($"/proc/{target.Pid}/fd/{fd}").LinkTarget);
            Assert.NotEqual(0, DescriptorFlags(target.Pid, fd) & O.CLOEXEC);
            int moved = caller.Checked("dup3", RemoteCall.Dup3(fd, 90, closeOnExec: false));
            Assert.Equal(90, moved);
            Assert.Equal(0, DescriptorFlags(target.Pid, 90) & O.CLOEXEC);
            caller.Checked("close", RemoteCall.Close(fd));
            Assert.False(File.Exists($"/proc/{target.Pid}/fd/{fd}"));

            // The same calls in a batch, and an address back from a typed mmap.
            var area = new AddressRange(0x5c00_0000_0000, 0x5c00_0000_2000);
            var batch = new SyscallBatch(injection);
            int mapped = batch.Add("mmap", RemoteCall.Mmap(area, Mman.PROT_READ, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS | Mman.MAP_FIXED_NOREPLACE, fd: -1, offset: 0));
            batch.Add(() => "close of fd 90", RemoteCall.Close(90));
            var results = batch.Run();
            Assert.Equal((long)area.Start.Value, results[mapped]);
            Assert.False(File.Exists($"/proc/{target.Pid}/fd/90"));
            Assert.Equal(new Address(0x5d00_0000_0000), caller.Checked("mremap", RemoteCall.MoveArea(area, new Address(0x5d00_0000_0000))));

            // A failed typed call throws what a raw one did: the description, the process, the errno.
            var error = Assert.Throws<NativeException>(() => caller.Checked("close of fd 91", RemoteCall.Close(91)));
            Assert.Equal(Errno.EBADF, error.Errno);
            Assert.Contains($"close of fd 91 in {target.Pid}", error.Message);
        }
        finally
        {
            thread.Detach();
            memory.Dispose();
            File.Delete(file);
        }
    }

    // The flags of a descriptor as /proc/PID/fdinfo gives them (octal), O_CLOEXEC included.
    private static int DescriptorFlags(int pid, int fd) =>
        Convert.ToInt32(File.ReadLines($"/proc/{pid}/fdinfo/{fd}").First(l => l.StartsWith("flags:", StringComparison.Ordinal))[6..].Trim(), 8);
}
