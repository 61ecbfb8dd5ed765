// A .NET program that holds what real .NET services hold, and checks it on request after a restore:
// - many threads, each with its own counter and a [ThreadStatic] value that must still be its own;
// - a memfd mapped twice (read-write and read-only views of the same pages), as the runtime's W^X double
//   mapping does for JIT code;
// - an eventfd watched by an epoll instance, served by a thread blocked in epoll_wait;
// - a unix socket listener (argument 1) that answers "check" with "OK ..." or "WRONG ...".
// Writes its pid to ./ready once everything is set up.
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

const int WorkerCount = 24;
var counters = new long[WorkerCount];
var tlsWrong = new bool[WorkerCount];
for (int i = 0; i < WorkerCount; i++)
{
    int index = i;
    new Thread(() => Worker.Run(index, counters, tlsWrong)) { IsBackground = true, Name = $"worker-{index}" }.Start();
}

var doubleMapping = new DoubleMapping(64 * 4096);
var events = new EventLoop();

var socketPath = args[0];
File.Delete(socketPath);
using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
listener.Bind(new UnixDomainSocketEndPoint(socketPath));
listener.Listen(4);
File.WriteAllText("ready.tmp", Environment.ProcessId.ToString());
File.Move("ready.tmp", "ready", overwrite: true);

while (true)
{
    using var client = listener.Accept();
    using var stream = new NetworkStream(client);
    using var reader = new StreamReader(stream, Encoding.ASCII);
    using var writer = new StreamWriter(stream, Encoding.ASCII) { AutoFlush = true };
    for (string? line; (line = reader.ReadLine()) is not null;)
    {
        if (line == "check")
        {
            writer.WriteLine(Check());
        }
        else if (line == "exit")
        {
            writer.WriteLine("BYE");
            return;
        }
    }
}

string Check()
{
    var problems = new List<string>();
    var before = (long[])counters.Clone();
    Thread.Sleep(200);
    int stalled = Enumerable.Range(0, WorkerCount).Count(i => Volatile.Read(ref counters[i]) == before[i]);
    if (stalled > 0)
    {
        problems.Add($"{stalled} worker(s) stalled");
    }
    if (tlsWrong.Any(w => w))
    {
        problems.Add("a worker saw another thread's [ThreadStatic] value");
    }
    if (!doubleMapping.Verify())
    {
        problems.Add("the two views of the memfd differ");
    }
    if (!events.RoundTrip())
    {
        problems.Add("eventfd/epoll round trip failed");
    }
    GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
    int threads = Directory.GetDirectories($"/proc/{Environment.ProcessId}/task").Length;
    return problems.Count == 0
        ? $"OK pid={Environment.ProcessId} workers={WorkerCount} threads={threads} memfd={doubleMapping.Generation}"
        : $"WRONG {string.Join("; ", problems)}";
}

static class Worker
{
    [ThreadStatic] private static int identity;

    public static void Run(int index, long[] counters, bool[] tlsWrong)
    {
        identity = index + 1;
        var random = new Random(index);
        var data = new byte[4096 * (index + 1)];
        while (true)
        {
            random.NextBytes(data);
            Interlocked.Increment(ref counters[index]);
            if (identity != index + 1)
            {
                tlsWrong[index] = true;
            }
            Thread.Sleep(index % 3 == 0 ? 0 : 5);
        }
    }
}

// A memfd mapped read-write and read-only: every write through one view shows through the other.
sealed unsafe class DoubleMapping
{
    private readonly byte* writable;
    private readonly byte* readable;
    private readonly int length;

    public DoubleMapping(int length)
    {
        this.length = length;
        int fd = Native.memfd_create("criups-double", 0);
        if (fd < 0 || Native.ftruncate(fd, length) != 0)
        {
            throw new InvalidOperationException($"memfd: errno {Marshal.GetLastPInvokeError()}");
        }
        writable = (byte*)Native.mmap(null, (nuint)length, Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED, fd, 0);
        readable = (byte*)Native.mmap(null, (nuint)length, Native.PROT_READ, Native.MAP_SHARED, fd, 0);
        Native.close(fd);
        Fill();
    }

    public int Generation { get; private set; }

    private void Fill()
    {
        Generation++;
        for (int i = 0; i < length; i++)
        {
            writable[i] = (byte)(i * 7 + Generation);
        }
    }

    public bool Verify()
    {
        for (int i = 0; i < length; i++)
        {
            if (readable[i] != (byte)(i * 7 + Generation))
            {
                return false;
            }
        }
        Fill();
        for (int i = 0; i < length; i += 4096)
        {
            if (readable[i] != (byte)(i * 7 + Generation))
            {
                return false;
            }
        }
        return true;
    }
}

// An eventfd registered with an epoll instance; a thread waits in epoll_wait and hands each count it reads back.
sealed unsafe class EventLoop
{
    private readonly int eventFd = Native.eventfd(0, 0);
    private readonly int epollFd = Native.epoll_create1(0);
    private readonly SemaphoreSlim received = new(0);
    private long lastValue;

    public EventLoop()
    {
        var ev = new Native.EpollEvent { Events = Native.EPOLLIN, Data = 0x5eed };
        if (eventFd < 0 || epollFd < 0 || Native.epoll_ctl(epollFd, 1, eventFd, &ev) != 0)
        {
            throw new InvalidOperationException($"eventfd/epoll: errno {Marshal.GetLastPInvokeError()}");
        }
        new Thread(Loop) { IsBackground = true, Name = "epoll" }.Start();
    }

    private void Loop()
    {
        var ev = new Native.EpollEvent();
        while (true)
        {
            if (Native.epoll_wait(epollFd, &ev, 1, -1) == 1 && ev.Data == 0x5eed)
            {
                long value;
                if (Native.read(eventFd, &value, 8) == 8)
                {
                    Volatile.Write(ref lastValue, value);
                    received.Release();
                }
            }
        }
    }

    public bool RoundTrip()
    {
        long value = Random.Shared.Next(1, 1000);
        if (Native.write(eventFd, &value, 8) != 8)
        {
            return false;
        }
        return received.Wait(TimeSpan.FromSeconds(5)) && Volatile.Read(ref lastValue) == value;
    }
}

static unsafe class Native
{
    public const int PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
    public const uint EPOLLIN = 1;

    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    public struct EpollEvent
    {
        public uint Events;
        public ulong Data;
    }

    [DllImport("libc", SetLastError = true)] public static extern int memfd_create(string name, uint flags);
    [DllImport("libc", SetLastError = true)] public static extern int ftruncate(int fd, long length);
    [DllImport("libc", SetLastError = true)] public static extern void* mmap(void* address, nuint length, int prot, int flags, int fd, long offset);
    [DllImport("libc", SetLastError = true)] public static extern int close(int fd);
    [DllImport("libc", SetLastError = true)] public static extern int eventfd(uint initial, int flags);
    [DllImport("libc", SetLastError = true)] public static extern int epoll_create1(int flags);
    [DllImport("libc", SetLastError = true)] public static extern int epoll_ctl(int epfd, int op, int fd, EpollEvent* ev);
    [DllImport("libc", SetLastError = true)] public static extern int epoll_wait(int epfd, EpollEvent* events, int max, int timeout);
    [DllImport("libc", SetLastError = true)] public static extern nint read(int fd, void* buffer, nuint count);
    [DllImport("libc", SetLastError = true)] public static extern nint write(int fd, void* buffer, nuint count);
}
