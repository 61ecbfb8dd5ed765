using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace CriuPS.Engine.Images.Digests;

/// <summary>
/// XxHash128 (XXH3-128, seed 0, the default secret), bit for bit what System.IO.Hashing computes, with its loop over
/// inputs longer than 240 bytes written here so that it runs optimized from its first call. System.IO.Hashing's own
/// loop uses Vector256 of the runtime's assembly, which ReadyToRun cannot precompile ("ABI unstable"): each new
/// PowerShell ran it unoptimized (some 1 GB/s idle, 0.2 GB/s at load 60, against 30 GB/s) until the runtime
/// promoted it, seconds later under load, so the engine's warm-up spent up to 3 s hashing before a first checkpoint
/// could start, and without that wait a first dump of 1 GiB hashed at the slow speed while frozen. These methods
/// are compiled once, optimized, when first called (AggressiveOptimization: a few ms, in the warm-up). Inputs of up
/// to 240 bytes (the ends of small files) take XXH3's short paths, which are System.IO.Hashing's.
/// Streams in pieces of any size: a block of 1 KiB is consumed only once a byte after it has come, as XXH3 treats the
/// last block differently.
/// </summary>
internal sealed class LongXxHash128
{
    /// <summary>The digest: 16 bytes, the high half first, big-endian (XxHash128's canonical form).</summary>
    public const int HashBytes = 16;

    private const int ShortInputMax = 240;
    private const int StripeBytes = 64;
    private const int SecretBytes = 192;
    private const int SecretConsumeRate = 8;
    private const int StripesPerBlock = (SecretBytes - StripeBytes) / SecretConsumeRate;
    private const int BlockBytes = StripeBytes * StripesPerBlock;
    private const int ScrambleSecretOffset = SecretBytes - StripeBytes;
    private const int LastStripeSecretOffset = SecretBytes - StripeBytes - 7;
    private const int MergeLowSecretOffset = 11;
    private const int MergeHighSecretOffset = SecretBytes - StripeBytes - 11;

    private const uint Prime32_1 = 0x9E3779B1;
    private const uint Prime32_2 = 0x85EBCA77;
    private const uint Prime32_3 = 0xC2B2AE3D;
    private const ulong Prime64_1 = 0x9E3779B185EBCA87;
    private const ulong Prime64_2 = 0xC2B2AE3D27D4EB4F;
    private const ulong Prime64_3 = 0x165667B19E3779F9;
    private const ulong Prime64_4 = 0x85EBCA77C2B2AE63;
    private const ulong Prime64_5 = 0x27D4EB2F165667C5;

    // XXH3's kSecret.
    private static ReadOnlySpan<byte> Secret =>
    [
        0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
        0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
        0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
        0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
        0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
        0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
        0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
        0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
        0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
        0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
        0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
        0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
    ];

    private readonly ulong[] accumulators = new ulong[8];
    // Bytes not consumed yet (at most one block), and the last stripe of the blocks consumed, which the final stripe
    // takes its start from when fewer than 64 bytes follow them.
    private readonly byte[] pending = new byte[BlockBytes];
    private readonly byte[] consumedEnd = new byte[StripeBytes];
    private int pendingBytes;
    private long length;

    public LongXxHash128() => Reset();

    /// <summary>Hashes the next bytes.</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        length += data.Length;
        if (pendingBytes > 0)
        {
            int n = Math.Min(data.Length, BlockBytes - pendingBytes);
            data[..n].CopyTo(pending.AsSpan(pendingBytes));
            pendingBytes += n;
            data = data[n..];
            if (data.IsEmpty)
            {
                return;
            }
            ConsumeBlocks(accumulators, pending);
            pending.AsSpan(BlockBytes - StripeBytes).CopyTo(consumedEnd);
            pendingBytes = 0;
        }
        // Whole blocks straight from the caller's bytes, as long as one more byte follows the last of them.
        int whole = (data.Length - 1) / BlockBytes * BlockBytes;
        if (whole > 0)
        {
            ConsumeBlocks(accumulators, data[..whole]);
            data[(whole - StripeBytes)..whole].CopyTo(consumedEnd);
            data = data[whole..];
        }
        data.CopyTo(pending);
        pendingBytes = data.Length;
    }

    /// <summary>Writes the digest of everything appended into <paramref name="destination"/> and starts again.</summary>
    public void GetHashAndReset(Span<byte> destination)
    {
        if (length <= ShortInputMax)
        {
            XxHash128.Hash(pending.AsSpan(0, pendingBytes), destination);
        }
        else
        {
            Span<byte> lastStripe = stackalloc byte[StripeBytes];
            int fromConsumed = Math.Max(0, StripeBytes - pendingBytes);
            consumedEnd.AsSpan(StripeBytes - fromConsumed).CopyTo(lastStripe);
            pending.AsSpan(pendingBytes - (StripeBytes - fromConsumed), StripeBytes - fromConsumed).CopyTo(lastStripe[fromConsumed..]);
            Finish(accumulators, pending.AsSpan(0, pendingBytes), lastStripe, length, destination);
        }
        Reset();
    }

    /// <summary>The digest of <paramref name="data"/>, whole.</summary>
    public static void Hash(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        if (data.Length <= ShortInputMax)
        {
            XxHash128.Hash(data, destination);
            return;
        }
        Span<ulong> accumulators = stackalloc ulong[8];
        Initialize(accumulators);
        int whole = (data.Length - 1) / BlockBytes * BlockBytes;
        ConsumeBlocks(accumulators, data[..whole]);
        Finish(accumulators, data[whole..], data[^StripeBytes..], data.Length, destination);
    }

    private void Reset()
    {
        Initialize(accumulators);
        pendingBytes = 0;
        length = 0;
    }

    private static void Initialize(Span<ulong> accumulators)
    {
        accumulators[0] = Prime32_3;
        accumulators[1] = Prime64_1;
        accumulators[2] = Prime64_2;
        accumulators[3] = Prime64_3;
        accumulators[4] = Prime64_4;
        accumulators[5] = Prime32_2;
        accumulators[6] = Prime64_5;
        accumulators[7] = Prime32_1;
    }

    // Blocks of 1 KiB (a multiple of them): 16 stripes each, then the accumulators scrambled.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ConsumeBlocks(Span<ulong> accumulators, ReadOnlySpan<byte> blocks)
    {
        var secret = Secret;
        if (Avx2.IsSupported)
        {
            ref byte key = ref MemoryMarshal.GetReference(secret);
            var low = Vector256.Create<ulong>(accumulators);
            var high = Vector256.Create<ulong>(accumulators[4..]);
            for (int block = 0; block < blocks.Length; block += BlockBytes)
            {
                ref byte input = ref Unsafe.AsRef(in blocks[block]);
                for (int stripe = 0; stripe < StripesPerBlock; stripe++)
                {
                    Accumulate512(ref low, ref high, ref Unsafe.Add(ref input, stripe * StripeBytes), ref Unsafe.Add(ref key, stripe * SecretConsumeRate));
                }
                low = Scramble(low, Vector256.LoadUnsafe(ref key, ScrambleSecretOffset).AsUInt64());
                high = Scramble(high, Vector256.LoadUnsafe(ref key, ScrambleSecretOffset + 32).AsUInt64());
            }
            low.CopyTo(accumulators);
            high.CopyTo(accumulators[4..]);
            return;
        }
        for (int block = 0; block < blocks.Length; block += BlockBytes)
        {
            for (int stripe = 0; stripe < StripesPerBlock; stripe++)
            {
                Accumulate512(accumulators, blocks.Slice(block + stripe * StripeBytes, StripeBytes), secret[(stripe * SecretConsumeRate)..]);
            }
            for (int i = 0; i < 8; i++)
            {
                ulong accumulator = accumulators[i];
                accumulator ^= accumulator >> 47;
                accumulator ^= BinaryPrimitives.ReadUInt64LittleEndian(secret[(ScrambleSecretOffset + 8 * i)..]);
                accumulators[i] = accumulator * Prime32_1;
            }
        }
    }

    // The stripes of the last (partial or whole) block but its last byte's, then the last 64 bytes of the input, then
    // the two halves from the accumulators.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Finish(Span<ulong> accumulators, ReadOnlySpan<byte> tail, ReadOnlySpan<byte> lastStripe, long length, Span<byte> destination)
    {
        var secret = Secret;
        int stripes = (tail.Length - 1) / StripeBytes;
        for (int stripe = 0; stripe < stripes; stripe++)
        {
            Accumulate512(accumulators, tail.Slice(stripe * StripeBytes, StripeBytes), secret[(stripe * SecretConsumeRate)..]);
        }
        Accumulate512(accumulators, lastStripe, secret[LastStripeSecretOffset..]);
        ulong low = MergeAccumulators(accumulators, secret[MergeLowSecretOffset..], (ulong)length * Prime64_1);
        ulong high = MergeAccumulators(accumulators, secret[MergeHighSecretOffset..], ~((ulong)length * Prime64_2));
        BinaryPrimitives.WriteUInt64BigEndian(destination, high);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], low);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate512(Span<ulong> accumulators, ReadOnlySpan<byte> stripe, ReadOnlySpan<byte> secret)
    {
        for (int i = 0; i < 8; i++)
        {
            ulong value = BinaryPrimitives.ReadUInt64LittleEndian(stripe[(8 * i)..]);
            ulong keyed = value ^ BinaryPrimitives.ReadUInt64LittleEndian(secret[(8 * i)..]);
            accumulators[i ^ 1] += value;
            accumulators[i] += (keyed & 0xFFFFFFFF) * (keyed >> 32);
        }
    }

    // The same, 4 accumulators per vector: each lane adds its neighbour's input and its keyed input's halves multiplied.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate512(ref Vector256<ulong> low, ref Vector256<ulong> high, ref byte stripe, ref byte secret)
    {
        var value = Vector256.LoadUnsafe(ref stripe).AsUInt64();
        var keyed = value ^ Vector256.LoadUnsafe(ref secret).AsUInt64();
        low += Avx2.Multiply(keyed.AsUInt32(), Avx2.ShiftRightLogical(keyed, 32).AsUInt32()) + Avx2.Shuffle(value.AsUInt32(), 0b01_00_11_10).AsUInt64();
        value = Vector256.LoadUnsafe(ref stripe, 32).AsUInt64();
        keyed = value ^ Vector256.LoadUnsafe(ref secret, 32).AsUInt64();
        high += Avx2.Multiply(keyed.AsUInt32(), Avx2.ShiftRightLogical(keyed, 32).AsUInt32()) + Avx2.Shuffle(value.AsUInt32(), 0b01_00_11_10).AsUInt64();
    }

    // accumulator ^= accumulator >> 47 ^ key, times Prime32_1 (a 64 by 32 bit product, from two 32 by 32 ones).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Scramble(Vector256<ulong> accumulators, Vector256<ulong> key)
    {
        var keyed = accumulators ^ Avx2.ShiftRightLogical(accumulators, 47) ^ key;
        var prime = Vector256.Create(Prime32_1);
        var lowProduct = Avx2.Multiply(keyed.AsUInt32(), prime);
        var highProduct = Avx2.Multiply(Avx2.ShiftRightLogical(keyed, 32).AsUInt32(), prime);
        return lowProduct + Avx2.ShiftLeftLogical(highProduct, 32);
    }

    private static ulong MergeAccumulators(ReadOnlySpan<ulong> accumulators, ReadOnlySpan<byte> secret, ulong start)
    {
        ulong result = start;
        for (int i = 0; i < 4; i++)
        {
            ulong a = accumulators[2 * i] ^ BinaryPrimitives.ReadUInt64LittleEndian(secret[(16 * i)..]);
            ulong b = accumulators[2 * i + 1] ^ BinaryPrimitives.ReadUInt64LittleEndian(secret[(16 * i + 8)..]);
            ulong product = Math.BigMul(a, b, out ulong productLow);
            result += product ^ productLow;
        }
        result ^= result >> 37;
        result *= 0x165667919E3779F9;
        return result ^ (result >> 32);
    }
}
