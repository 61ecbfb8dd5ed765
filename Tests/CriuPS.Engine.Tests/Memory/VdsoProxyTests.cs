using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Tests.Images;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using Tmds.Linux;

namespace CriuPS.Engine.Tests.Memory;

/// <summary>
/// The vDSO proxy, on real bytes: this machine's vDSO (read from this test process) and the vDSO the counter-dyn
/// vector saved on another build of the kernel. The symbol tables are read as CRIU read them (its dump.log names the
/// offsets), and the patched proxy is run here: its entry points must answer through this machine's vDSO.
/// </summary>
public sealed unsafe class VdsoProxyTests
{
    private static readonly string[] Functions = ["__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time", "__vdso_getcpu"];

    // This process's vDSO: where it is mapped and its bytes.
    private static (ulong Start, byte[] Bytes) LiveVdso()
    {
        var line = File.ReadLines("/proc/self/maps").Single(l => l.EndsWith("[vdso]", StringComparison.Ordinal));
        var bounds = line.Split(' ')[0].Split('-');
        ulong start = ulong.Parse(bounds[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        ulong end = ulong.Parse(bounds[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return (start, new ReadOnlySpan<byte>((void*)start, (int)(end - start)).ToArray());
    }

    // The vDSO the counter-dyn vector saved: its area in mm-PID.img, its bytes through the pagemap.
    private static byte[] SavedVdso()
    {
        var vector = InteropVector.Get(InteropVector.DynamicName);
        var mm = ImageReader.ReadSingle<MmEntry>(vector.ImagesDirectory, ImageTypes.Mm, vector.PidText);
        var area = mm.Vmas.Single(v => ((VmaStatus)v.Status & VmaStatus.Vdso) != 0);
        using var pages = PageChain.Open(vector.ImagesDirectory, ImageTypes.Pagemap, vector.PidText);
        return pages.Read(new Address(area.Start), (int)(area.End - area.Start)) ?? throw new InvalidOperationException("the vector saved no vDSO pages");
    }

    [Fact]
    public void Reads_the_saved_vdso_symbols_at_the_offsets_CRIU_found_when_it_dumped()
    {
        var symbols = VdsoSymbols.Read(SavedVdso()).ByName;

        // The vector's dump.log: "vdso: symbol __vdso_clock_gettime at address af0" and so on.
        Assert.Equal(0xaf0UL, symbols["__vdso_clock_gettime"].Offset);
        Assert.Equal(0xf00UL, symbols["__vdso_getcpu"].Offset);
        Assert.Equal(0x810UL, symbols["__vdso_gettimeofday"].Offset);
        Assert.Equal(0xac0UL, symbols["__vdso_time"].Offset);
        Assert.Equal(symbols["__vdso_time"].Offset, symbols["time"].Offset);
        Assert.DoesNotContain("LINUX_2.6", symbols.Keys); // the version definition is no function
    }

    [Fact]
    public void Reads_this_machines_vdso_symbols_at_entry_points_that_answer()
    {
        var (start, bytes) = LiveVdso();
        var symbols = VdsoSymbols.Read(bytes).ByName;
        Assert.All(Functions, f => Assert.Contains(f, symbols.Keys));

        var time = (delegate* unmanaged<long*, long>)(start + symbols["__vdso_time"].Offset);
        long before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        long now = time(null);
        Assert.InRange(now, before, DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        AssertClockBetweenSyscalls((delegate* unmanaged<int, long*, int>)(start + symbols["__vdso_clock_gettime"].Offset));
    }

    [Fact]
    public void A_proxy_of_the_saved_vdso_answers_every_call_through_this_machines()
    {
        var (liveStart, liveBytes) = LiveVdso();
        var saved = SavedVdso();
        var savedSymbols = VdsoSymbols.Read(saved);
        var liveSymbols = VdsoSymbols.Read(liveBytes);
        var proxy = VdsoProxy.Plan(savedSymbols, liveSymbols, liveStart);

        // One jump per distinct entry point, each to the same-named function of the live vDSO.
        Assert.Equal(savedSymbols.ByName.Values.Select(s => s.Offset).Distinct().Count(), proxy.Patches.Count);
        foreach (var patch in proxy.Patches)
        {
            Assert.Equal(new byte[] { 0x48, 0xb8 }, patch.Code[..2]);
            Assert.Equal(new byte[] { 0xff, 0xe0 }, patch.Code[10..]);
            Assert.Equal(liveStart + liveSymbols.ByName[patch.Name].Offset, BinaryPrimitives.ReadUInt64LittleEndian(patch.Code.AsSpan(2)));
        }

        // The patched saved bytes, mapped executable here: calling the saved entry points must reach the live vDSO.
        ulong length = (ulong)saved.Length;
        void* mapped = LibC.mmap(null, (size_t)length, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS, -1, 0);
        Assert.NotEqual(new IntPtr(-1), (IntPtr)mapped);
        try
        {
            var image = new Span<byte>(mapped, saved.Length);
            saved.CopyTo(image);
            foreach (var patch in proxy.Patches)
            {
                patch.Code.CopyTo(image[(int)patch.Offset..]);
            }
            Assert.Equal(0, LibC.mprotect(mapped, (size_t)length, LibC.PROT_READ | LibC.PROT_EXEC));
            ulong proxyBase = (ulong)mapped;
            var symbols = savedSymbols.ByName;

            var time = (delegate* unmanaged<long*, long>)(proxyBase + symbols["__vdso_time"].Offset);
            long before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            Assert.InRange(time(null), before, DateTimeOffset.UtcNow.ToUnixTimeSeconds());

            AssertClockBetweenSyscalls((delegate* unmanaged<int, long*, int>)(proxyBase + symbols["clock_gettime"].Offset));

            var gettimeofday = (delegate* unmanaged<long*, void*, int>)(proxyBase + symbols["__vdso_gettimeofday"].Offset);
            long* tv = stackalloc long[2]; // struct timeval: seconds, microseconds
            long beforeUs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
            Assert.Equal(0, gettimeofday(tv, null));
            long tvUs = tv[0] * 1_000_000 + tv[1];
            Assert.InRange(tvUs, beforeUs - 1000, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000 + 1000);

            var getcpu = (delegate* unmanaged<uint*, uint*, void*, int>)(proxyBase + symbols["__vdso_getcpu"].Offset);
            uint cpu = uint.MaxValue, node = uint.MaxValue;
            Assert.Equal(0, getcpu(&cpu, &node, null));
            Assert.InRange(cpu, 0u, (uint)Environment.ProcessorCount - 1);
            Assert.Equal(0u, node);
        }
        finally
        {
            LibC.munmap(mapped, (size_t)length);
        }
    }

    [Fact]
    public void A_saved_function_this_kernel_lacks_is_refused_by_name()
    {
        var (liveStart, liveBytes) = LiveVdso();
        // This machine's vDSO with one exported name changed: the saved vDSO's __vdso_getcpu has no counterpart.
        var renamed = Rename(liveBytes, "__vdso_getcpu", "__vdso_getcpX");

        var error = Assert.Throws<VdsoProxyException>(() => VdsoProxy.Plan(VdsoSymbols.Read(SavedVdso()), VdsoSymbols.Read(renamed), liveStart));
        Assert.Contains("__vdso_getcpu", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bytes_that_are_no_vdso_are_refused_with_the_reason()
    {
        var saved = SavedVdso();
        Assert.Contains("ELF header", Assert.Throws<InvalidDataException>(() => VdsoSymbols.Read(new byte[4096])).Message, StringComparison.Ordinal);
        // The program headers and the dynamic section survive, the tables they point to do not.
        Assert.Contains("beyond", Assert.Throws<InvalidDataException>(() => VdsoSymbols.Read(saved.AsSpan(0, 0x200))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_jump_is_an_absolute_jump_through_rax()
    {
        Assert.Equal(new byte[] { 0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xff, 0xe0 }, VdsoProxy.Jump(0x1122334455667788));
    }

    // A vDSO clock_gettime(CLOCK_MONOTONIC) must fall between two made by the system call.
    private static void AssertClockBetweenSyscalls(delegate* unmanaged<int, long*, int> clockGettime)
    {
        const int ClockMonotonic = 1;
        static long Ns((long Seconds, long Nanoseconds) t) => t.Seconds * 1_000_000_000 + t.Nanoseconds;
        long before = Ns(ClockGettime.Now(ClockMonotonic));
        long* vdso = stackalloc long[2]; // struct timespec
        Assert.Equal(0, clockGettime(ClockMonotonic, vdso));
        long after = Ns(ClockGettime.Now(ClockMonotonic));
        Assert.InRange(Ns((vdso[0], vdso[1])), before, after);
    }

    private static byte[] Rename(byte[] image, string from, string to)
    {
        var copy = (byte[])image.Clone();
        var name = Encoding.ASCII.GetBytes(from + "\0");
        int at = copy.AsSpan().IndexOf(name);
        Assert.True(at >= 0, $"{from} is not in the vDSO's string table");
        Encoding.ASCII.GetBytes(to).CopyTo(copy, at);
        return copy;
    }
}
