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
    public void StateThisCpuCannotHoldIsRefused()
    {
        var layout = XStateLayout.Current;
        var image = XStateCodec.ToImage(new byte[layout.Size], layout);
        image.Xsave.XstateBv = 1UL << 62;
        var error = Assert.Throws<CriuPS.Engine.Errors.CheckpointException>(() => XStateCodec.FromImage(image, layout));
        Assert.Contains("XSAVE features", error.Message);
    }
}
