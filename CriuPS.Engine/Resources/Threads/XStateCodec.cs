using System.Buffers.Binary;
using System.Runtime.InteropServices;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Arch.X86_64;
using CriuPS.Native.Ptrace;

namespace CriuPS.Engine.Resources.Threads;

/// <summary>
/// The XSAVE area of NT_X86_XSTATE, split into the fields of CRIU's user_x86_fpregs_entry (the legacy FXSAVE
/// part) and user_x86_xsave_entry (one array per extended component), and put back together on restore. The
/// component offsets come from this CPU's CPUID, so an image moves between CPUs with different layouts.
/// </summary>
internal static class XStateCodec
{
    private const int XStateBvOffset = XStateLayout.LegacyAreaSize;

    public static UserX86FpregsEntry ToImage(ReadOnlySpan<byte> xstate, XStateLayout layout)
    {
        var fp = new UserX86FpregsEntry
        {
            Cwd = BinaryPrimitives.ReadUInt16LittleEndian(xstate[0..]),
            Swd = BinaryPrimitives.ReadUInt16LittleEndian(xstate[2..]),
            Twd = BinaryPrimitives.ReadUInt16LittleEndian(xstate[4..]),
            Fop = BinaryPrimitives.ReadUInt16LittleEndian(xstate[6..]),
            Rip = BinaryPrimitives.ReadUInt64LittleEndian(xstate[8..]),
            Rdp = BinaryPrimitives.ReadUInt64LittleEndian(xstate[16..]),
            Mxcsr = BinaryPrimitives.ReadUInt32LittleEndian(xstate[24..]),
            MxcsrMask = BinaryPrimitives.ReadUInt32LittleEndian(xstate[28..]),
        };
        fp.StSpace.AddRange(Words32(xstate.Slice(32, 128)));
        fp.XmmSpace.AddRange(Words32(xstate.Slice(160, 256)));
        fp.Padding.AddRange(Words32(xstate.Slice(416, 96)));
        if (xstate.Length <= XStateBvOffset)
        {
            return fp;
        }

        var xsave = new UserX86XsaveEntry { XstateBv = BinaryPrimitives.ReadUInt64LittleEndian(xstate[XStateBvOffset..]) };
        if (layout.Has(XStateLayout.Avx))
        {
            xsave.YmmhSpace.AddRange(Words32(ComponentOf(xstate, layout, XStateLayout.Avx)));
        }
        if (layout.Has(XStateLayout.MpxBndRegs))
        {
            xsave.BndregState.AddRange(Words64(ComponentOf(xstate, layout, XStateLayout.MpxBndRegs)));
        }
        if (layout.Has(XStateLayout.MpxBndCsr))
        {
            xsave.BndcsrState.AddRange(Words64(ComponentOf(xstate, layout, XStateLayout.MpxBndCsr)));
        }
        if (layout.Has(XStateLayout.Avx512Opmask))
        {
            xsave.OpmaskReg.AddRange(Words64(ComponentOf(xstate, layout, XStateLayout.Avx512Opmask)));
        }
        if (layout.Has(XStateLayout.Avx512ZmmHi256))
        {
            xsave.ZmmUpper.AddRange(Words64(ComponentOf(xstate, layout, XStateLayout.Avx512ZmmHi256)));
        }
        if (layout.Has(XStateLayout.Avx512Hi16Zmm))
        {
            xsave.Hi16Zmm.AddRange(Words64(ComponentOf(xstate, layout, XStateLayout.Avx512Hi16Zmm)));
        }
        if (layout.Has(XStateLayout.Pkru))
        {
            xsave.Pkru.AddRange(Words32(ComponentOf(xstate, layout, XStateLayout.Pkru)));
        }
        fp.Xsave = xsave;
        return fp;
    }

    /// <summary>
    /// Builds a standard-format XSAVE buffer for this CPU from an image's fpregs, which another CPU may have saved:
    /// each component the image carries and this CPU enables goes to this CPU's offset for it, and the header marks
    /// in use what the thread had in use among them. The restore has checked beforehand (CpuFit) that this CPU enables
    /// every component the thread had in use; a component it carries but did not use stays in its initial state.
    /// </summary>
    public static byte[] FromImage(UserX86FpregsEntry fp, XStateLayout layout)
    {
        var xstate = new byte[layout.Size];
        var span = xstate.AsSpan();
        BinaryPrimitives.WriteUInt16LittleEndian(span[0..], (ushort)fp.Cwd);
        BinaryPrimitives.WriteUInt16LittleEndian(span[2..], (ushort)fp.Swd);
        BinaryPrimitives.WriteUInt16LittleEndian(span[4..], (ushort)fp.Twd);
        BinaryPrimitives.WriteUInt16LittleEndian(span[6..], (ushort)fp.Fop);
        BinaryPrimitives.WriteUInt64LittleEndian(span[8..], fp.Rip);
        BinaryPrimitives.WriteUInt64LittleEndian(span[16..], fp.Rdp);
        BinaryPrimitives.WriteUInt32LittleEndian(span[24..], fp.Mxcsr);
        BinaryPrimitives.WriteUInt32LittleEndian(span[28..], fp.MxcsrMask);
        CopyWords(fp.StSpace, span.Slice(32, 128));
        CopyWords(fp.XmmSpace, span.Slice(160, 256));
        CopyWords(fp.Padding, span.Slice(416, 96));

        var xsave = fp.Xsave;
        ulong present = XStateLayout.X87Mask | XStateLayout.SseMask;
        if (xsave is not null)
        {
            Component(xsave.YmmhSpace, XStateLayout.Avx, layout, span, ref present);
            Component(xsave.BndregState, XStateLayout.MpxBndRegs, layout, span, ref present);
            Component(xsave.BndcsrState, XStateLayout.MpxBndCsr, layout, span, ref present);
            Component(xsave.OpmaskReg, XStateLayout.Avx512Opmask, layout, span, ref present);
            Component(xsave.ZmmUpper, XStateLayout.Avx512ZmmHi256, layout, span, ref present);
            Component(xsave.Hi16Zmm, XStateLayout.Avx512Hi16Zmm, layout, span, ref present);
            Component(xsave.Pkru, XStateLayout.Pkru, layout, span, ref present);
            BinaryPrimitives.WriteUInt64LittleEndian(span[XStateBvOffset..], xsave.XstateBv & present);
        }
        else
        {
            BinaryPrimitives.WriteUInt64LittleEndian(span[XStateBvOffset..], present);
        }
        return xstate;
    }

    private static void Component<T>(Google.Protobuf.Collections.RepeatedField<T> words, int component, XStateLayout layout, Span<byte> xstate, ref ulong present)
        where T : unmanaged
    {
        if (words.Count == 0 || !layout.Has(component))
        {
            return;
        }
        var (offset, size) = layout.Component(component);
        var source = MemoryMarshal.AsBytes(words.ToArray().AsSpan());
        source[..Math.Min(size, source.Length)].CopyTo(xstate.Slice(offset, size));
        present |= 1UL << component;
    }

    private static ReadOnlySpan<byte> ComponentOf(ReadOnlySpan<byte> xstate, XStateLayout layout, int component)
    {
        var (offset, size) = layout.Component(component);
        return offset + size <= xstate.Length ? xstate.Slice(offset, size) : ReadOnlySpan<byte>.Empty;
    }

    private static uint[] Words32(ReadOnlySpan<byte> bytes) => MemoryMarshal.Cast<byte, uint>(bytes).ToArray();

    private static ulong[] Words64(ReadOnlySpan<byte> bytes) => MemoryMarshal.Cast<byte, ulong>(bytes).ToArray();

    private static void CopyWords(Google.Protobuf.Collections.RepeatedField<uint> words, Span<byte> destination)
    {
        var source = MemoryMarshal.AsBytes(words.ToArray().AsSpan());
        source[..Math.Min(source.Length, destination.Length)].CopyTo(destination);
    }
}
