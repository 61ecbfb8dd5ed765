using System.Text;
using CriuPS.Native.Proc;
using Xunit;

namespace CriuPS.Engine.Tests.Memory;

public class SmapsParserTests
{
    private const string Smaps =
        "55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]\n" +
        "Size:                132 kB\n" +
        "KernelPageSize:        4 kB\n" +
        "Anonymous:             8 kB\n" +
        "VmFlags: rd wr mr mw me ac sd \n" +
        "7f1e2c000000-7f1e2c001000 r--s 00002000 fe:01 1234567                    /tmp/caf\u00e9 (deleted)\n" +
        "Size:                  4 kB\n" +
        "FilePmdMapped:         0 kB\n" +
        "VmFlags: rd sh mr mw me ms dd io pf \n" +
        "7f1e2c200000-7f1e2c600000 rw-p 00000000 00:11 11166219                   /anon_hugepage (deleted)\n" +
        "Size:               4096 kB\n" +
        "KernelPageSize:     2048 kB\n" +
        "MMUPageSize:        2048 kB\n" +
        "VmFlags: rd wr mr mw me de ht \n";

    [Fact]
    public void ReadsHeadersAndFlagsFromBytes()
    {
        var vmas = SmapsParser.Parse(Encoding.UTF8.GetBytes(Smaps));
        Assert.Equal(3, vmas.Count);
        Assert.Equal("[heap]", vmas[0].Path);
        Assert.Equal(0x55d0c0a00000UL, vmas[0].Start.Value);
        Assert.True(vmas[0].Writable && !vmas[0].Shared);
        Assert.True(vmas[0].HasFlag("ac"));
        Assert.False(vmas[0].HasFlag("io"));
        Assert.Equal("/tmp/caf\u00e9 (deleted)", vmas[1].Path);
        Assert.True(vmas[1].IsDeleted && vmas[1].Shared);
        Assert.Equal(0x2000UL, vmas[1].Offset);
        Assert.Equal(1234567UL, vmas[1].Inode);
        Assert.True(vmas[1].HasFlag("io") && vmas[1].HasFlag("pf") && vmas[1].HasFlag("rd"));
        Assert.False(vmas[1].HasFlag("wr"));
        Assert.Equal(4096UL, vmas[0].KernelPageSize);
        Assert.Equal(0UL, vmas[1].KernelPageSize); // not given: unknown
        Assert.Equal(2UL << 20, vmas[2].KernelPageSize);
        Assert.True(vmas[2].HasFlag("ht"));
    }

    [Fact]
    public void AreasThatShareAPathOrAFlagsLineEachGetTheirOwnAndTheOthersAreNotConfused()
    {
        const string maps =
            "7f0000000000-7f0000001000 r--p 00000000 fe:01 42                         /usr/lib/libc.so.6\n" +
            "VmFlags: rd mr mw me sd \n" +
            "7f0000001000-7f0000002000 r-xp 00001000 fe:01 42                         /usr/lib/libc.so.6\n" +
            "VmFlags: rd ex mr mw me sd \n" +
            "7f0000002000-7f0000003000 rw-p 00000000 00:00 0 \n" +
            "VmFlags: rd wr mr mw me ac sd \n" +
            "7f0000003000-7f0000004000 r--p 00000000 fe:01 43                         /usr/lib/libm.so.6\n" +
            "VmFlags: rd mr mw me sd \n" +
            "7f0000004000-7f0000005000 r--p 00002000 fe:01 42                         /usr/lib/libc.so.6\n" +
            "VmFlags: rd mr mw me dc sd \n";
        var vmas = SmapsParser.Parse(Encoding.UTF8.GetBytes(maps));
        Assert.Equal(["/usr/lib/libc.so.6", "/usr/lib/libc.so.6", "", "/usr/lib/libm.so.6", "/usr/lib/libc.so.6"], vmas.Select(v => v.Path));
        Assert.Equal(["rd mr mw me sd", "rd ex mr mw me sd", "rd wr mr mw me ac sd", "rd mr mw me sd", "rd mr mw me dc sd"], vmas.Select(v => v.VmFlags.ToString()));
        Assert.Equal([42UL, 42, 0, 43, 42], vmas.Select(v => v.Inode));
        Assert.Equal(0x2000UL, vmas[4].Offset);
        Assert.True(vmas[1].Executable && !vmas[2].Executable && vmas[2].Writable);
    }

    [Theory]
    [InlineData("rd wr mr mw me ac sd", "rd mr mw me", true)]
    [InlineData("rd wr mr mw me ac sd", "rd mr mw me dc", false)]
    [InlineData("rd wr mr mw me dc ac sd", "rd wr mr mw me ac sd", false)]
    [InlineData("mr mw me", "mr mw me lo", false)]
    [InlineData("rd ac sd", "", true)]
    [InlineData("", "", true)]
    public void FlagsAreComparedWithoutThoseLeftOut(string first, string second, bool same)
    {
        string[] leftOut = ["rd", "wr", "ac", "sd"];
        var a = new VmFlagSet(first);
        var b = new VmFlagSet(second);
        Assert.Equal(same, a.SameAs(b, leftOut));
        Assert.Equal(same, b.SameAs(a, leftOut));
        Assert.Equal(same, a.Without(leftOut) == b.Without(leftOut));
    }

    [Fact]
    public void MatchesThisProcessMaps()
    {
        var fromSmaps = SmapsParser.Read(Environment.ProcessId);
        Assert.Contains(fromSmaps, v => v.Path == "[stack]" && v.HasFlag("gd"));
        Assert.All(fromSmaps, v => Assert.True(v.End > v.Start));
    }
}
