using System.Diagnostics;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;
using Xunit.Abstractions;

namespace CriuPS.Engine.Tests.RemoteSyscall;

public class SyscallBatchTests
{
    private readonly ITestOutputHelper output;

    public SyscallBatchTests(ITestOutputHelper output) => this.output = output;

    [Fact]
    public void RunsEveryCallInOrderInOneStopAndReturnsTheirResults()
    {
        using var target = TestProcess.StartSleeper();
        var (injection, thread, memory) = Begin(target);
        try
        {
            // More calls than one run holds (the 256 KiB area takes about 2,500), so that the batch goes in several runs.
            var batch = new SyscallBatch(injection);
            const int Areas = 3000;
            var at = new Address(0x5a0000000000);
            for (int i = 0; i < Areas; i++)
            {
                batch.Add($"mmap {i}", SystemCall.Mmap, at.Value + (ulong)i * 0x2000, 0x1000, Mman.PROT_READ | Mman.PROT_WRITE,
                    Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS | Mman.MAP_FIXED_NOREPLACE, unchecked((ulong)-1), 0);
            }
            int getpid = batch.Add("getpid", SystemCall.Getpid);
            int callsBefore = injection.Caller.CallCount;
            var stopwatch = Stopwatch.StartNew();
            var results = batch.Run();
            output.WriteLine($"{Areas + 1} calls in a batch: {stopwatch.Elapsed.TotalMicroseconds / (Areas + 1):F2} µs per call");

            Assert.Equal(Areas + 1, results.Length);
            Assert.Equal(Areas + 1, injection.Caller.CallCount - callsBefore);
            for (int i = 0; i < Areas; i++)
            {
                Assert.Equal((long)(at.Value + (ulong)i * 0x2000), results[i]);
            }
            Assert.Equal(target.Pid, results[getpid]);
            var maps = File.ReadAllText($"/proc/{target.Pid}/maps");
            Assert.Contains($"{at.Value + (Areas - 1) * 0x2000UL:x}-", maps);
            Assert.Equal(0, batch.Count);
        }
        finally
        {
            thread.Detach();
            memory.Dispose();
        }
    }

    [Fact]
    public void StopsAtTheFirstFailedCallAndNamesIt()
    {
        using var target = TestProcess.StartSleeper();
        var (injection, thread, memory) = Begin(target);
        try
        {
            var batch = new SyscallBatch(injection);
            var at = new Address(0x5b0000000000);
            batch.Add("first mmap", SystemCall.Mmap, at.Value, 0x1000, Mman.PROT_READ, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS | Mman.MAP_FIXED_NOREPLACE, unchecked((ulong)-1), 0);
            batch.Add("close of a descriptor that is not open", SystemCall.Close, 9999);
            batch.Add("mmap after the failure", SystemCall.Mmap, at.Value + 0x10000, 0x1000, Mman.PROT_READ, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS | Mman.MAP_FIXED_NOREPLACE, unchecked((ulong)-1), 0);

            var error = Assert.Throws<NativeException>(() => batch.Run());
            Assert.Equal(Errno.EBADF, error.Errno);
            Assert.Contains("close of a descriptor that is not open", error.Message);
            var maps = File.ReadAllText($"/proc/{target.Pid}/maps");
            Assert.Contains($"{at.Value:x}-", maps);
            Assert.DoesNotContain($"{at.Value + 0x10000:x}-", maps);

            // The thread is usable again afterwards.
            Assert.Equal(target.Pid, injection.Caller.Call(SystemCall.Getpid));
        }
        finally
        {
            thread.Detach();
            memory.Dispose();
        }
    }

    [Fact]
    public void ACallOnARangeIsNamedWithTheRangeWhenItFails()
    {
        using var target = TestProcess.StartSleeper();
        var (injection, thread, memory) = Begin(target);
        try
        {
            var batch = new SyscallBatch(injection, capacity: 1);
            var unmapped = new AddressRange(0x5c0000000000, 0x5c0000002000);
            batch.Add("mprotect", unmapped, RemoteCall.Mprotect(unmapped, Mman.PROT_READ));

            var error = Assert.Throws<NativeException>(() => batch.Run());
            Assert.Equal(Errno.ENOMEM, error.Errno);
            Assert.Contains($"mprotect of {unmapped}", error.Message);
        }
        finally
        {
            thread.Detach();
            memory.Dispose();
        }
    }

    private static (Injection Injection, Tracee Thread, ProcessMemory Memory) Begin(TestProcess target)
    {
        var thread = Tracee.Seize(target.Pid, target.Pid, PtraceOptions.TraceSysGood | PtraceOptions.ExitKill);
        thread.InterruptAndWait();
        var memory = ProcessMemory.Open(target.Pid);
        return (Injection.Begin(thread, memory, SmapsParser.Read(target.Pid), new ByteCount(256 * 1024)), thread, memory);
    }
}
