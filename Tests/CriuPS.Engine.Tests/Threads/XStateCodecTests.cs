using System.Buffers.Binary;
using CriuPS.Engine.Resources.Threads;
using CriuPS.Native.Interop;
using CriuPS.Native.Ptrace;

namespace CriuPS.Engine.Tests.Threads;

public class XStateCodecTests
{
    [Fact]
    public void TheXsaveAreaOfARealThreadSurvivesTheImageFormat()
    {
        using var target = TestProcess.StartSleeper();
        var thread = Tracee.Seize(target.Pid, target.Pid, PtraceOptions.None);
        thread.InterruptAndWait();
        var original = thread.GetXState();
        thread.Detach();

        var layout = XStateLayout.Current;
        Assert.Equal(layout.Size, original.Length);
        var image = XStateCodec.ToImage(original, layout);
        var rebuilt = XStateCodec.FromImage(image, layout);

        Assert.Equal(original.AsSpan(0, XStateLayout.LegacyAreaSize).ToArray(), rebuilt.AsSpan(0, XStateLayout.LegacyAreaSize).ToArray());
        ulong present = BinaryPrimitives.ReadUInt64LittleEndian(original.AsSpan(XStateLayout.LegacyAreaSize));
        Assert.Equal(present, BinaryPrimitives.ReadUInt64LittleEndian(rebuilt.AsSpan(XStateLayout.LegacyAreaSize)));
        foreach (int component in new[] { XStateLayout.Avx, XStateLayout.Avx512Opmask, XStateLayout.Avx512ZmmHi256, XStateLayout.Avx512Hi16Zmm, XStateLayout.Pkru })
        {
            if (layout.Has(component))
            {
                var (offset, size) = layout.Component(component);
                Assert.Equal(original.AsSpan(offset, size).ToArray(), rebuilt.AsSpan(offset, size).ToArray());
            }
        }
    }

    [Fact]
    public void StateSavedOnALargerCpuGoesToTheOffsetsOfASmallerOne()
    {
        // A thread that used x87, SSE and AVX only, saved here (with AVX-512, where the CPU has it), restored on a CPU
        // that enables no AVX-512 state: its area is 832 bytes long.
        var layout = XStateLayout.Current;
        var original = new byte[layout.Size];
        Random.Shared.NextBytes(original.AsSpan(160, 256));
        var (avxOffset, avxSize) = layout.Component(XStateLayout.Avx);
        Random.Shared.NextBytes(original.AsSpan(avxOffset, avxSize));
        const ulong used = XStateLayout.X87Mask | XStateLayout.SseMask | (1UL << XStateLayout.Avx);
        BinaryPrimitives.WriteUInt64LittleEndian(original.AsSpan(XStateLayout.LegacyAreaSize), used);
        var smaller = new XStateLayout(used, avxOffset + avxSize, new() { [XStateLayout.Avx] = (avxOffset, avxSize) });

        var rebuilt = XStateCodec.FromImage(XStateCodec.ToImage(original, layout), smaller);

        Assert.Equal(avxOffset + avxSize, rebuilt.Length);
        Assert.Equal(original.AsSpan(0, XStateLayout.LegacyAreaSize).ToArray(), rebuilt.AsSpan(0, XStateLayout.LegacyAreaSize).ToArray());
        Assert.Equal(used, BinaryPrimitives.ReadUInt64LittleEndian(rebuilt.AsSpan(XStateLayout.LegacyAreaSize)));
        Assert.Equal(original.AsSpan(avxOffset, avxSize).ToArray(), rebuilt.AsSpan(avxOffset, avxSize).ToArray());
    }

    [Fact]
    public void StateSavedOnASmallerCpuLeavesTheOtherComponentsInTheirInitialState()
    {
        // Saved on a CPU without AVX-512 (as CRIU or CriuPS write it there: no opmask or ZMM arrays), restored here.
        var layout = XStateLayout.Current;
        var image = XStateCodec.ToImage(new byte[layout.Size], layout);
        image.Xsave.OpmaskReg.Clear();
        image.Xsave.ZmmUpper.Clear();
        image.Xsave.Hi16Zmm.Clear();
        image.Xsave.XstateBv = XStateLayout.X87Mask | XStateLayout.SseMask | (1UL << XStateLayout.Avx);

        var rebuilt = XStateCodec.FromImage(image, layout);

        Assert.Equal(layout.Size, rebuilt.Length);
        Assert.Equal(image.Xsave.XstateBv, BinaryPrimitives.ReadUInt64LittleEndian(rebuilt.AsSpan(XStateLayout.LegacyAreaSize)));
    }
}
