using System.Buffers;
using System.Diagnostics;
using System.IO.Hashing;

namespace CriuPS.Engine.Images.Digests;

/// <summary>
/// Digests a file as its bytes go by, in blocks of <see cref="DefaultBlockBytes"/> counted from the start of the file
/// (whatever the sizes of the writes), with XxHash128: a fast non-cryptographic hash that finds damage, not tampering.
/// Blocks rather than one digest per file let a restore verify a large pages file on every core at once, and a lazy
/// restore verify each block of it when it first reads there, at the cost of 16 bytes per block.
/// </summary>
internal sealed class BlockDigester
{
    /// <summary>
    /// 1 MiB: small enough that a lazy restore's first fault in a block waits for a 1 MiB read and hash (about 0.2 ms
    /// here), large enough that the digests stay small (16 KiB per GiB of pages) and the per-block cost nil.
    /// </summary>
    public const int DefaultBlockBytes = 1 << 20;

    /// <summary>
    /// The largest block a manifest may describe: a verifier reads a whole block into memory, and checkpoints write
    /// <see cref="DefaultBlockBytes"/>, so anything near 2 GiB (an array's limit) is damage, not another writer's choice.
    /// </summary>
    public const int MaxBlockBytes = 64 << 20;

    private readonly XxHash128 hash = new();
    private readonly ArrayBufferWriter<byte> blocks = new();
    private readonly int blockBytes;
    private int inBlock;
    private long size;

    public BlockDigester(int blockBytes = DefaultBlockBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockBytes);
        this.blockBytes = blockBytes;
    }

    /// <summary>Bytes digested so far.</summary>
    public long Size => size;

    /// <summary>Digests the next bytes of the file.</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        while (data.Length > 0)
        {
            int n = Math.Min(data.Length, blockBytes - inBlock);
            hash.Append(data[..n]);
            inBlock += n;
            size += n;
            data = data[n..];
            if (inBlock == blockBytes)
            {
                EndBlock();
            }
        }
    }

    /// <summary>The digest of everything appended, as file <paramref name="name"/>.</summary>
    public FileDigest Finish(string name)
    {
        if (inBlock > 0)
        {
            EndBlock();
        }
        return new FileDigest(name, size, blockBytes, blocks.WrittenSpan.ToArray());
    }

    /// <summary>The digest of one whole block.</summary>
    public static void Digest(ReadOnlySpan<byte> block, Span<byte> digest) => XxHash128.Hash(block, digest);

    /// <summary>
    /// Hashes until the hashing code runs optimized, or <paramref name="limit"/> has passed. System.IO.Hashing ships
    /// precompiled code that hashes about 1 GB/s here; the JIT's optimized code, 30 GB/s, replaces it only once a
    /// method has been called 30 times after the runtime's start-up delay. Left to the first dump, the page writer
    /// would hash its first hundreds of MiB at the slow speed, in the frozen window, and a restore would verify at
    /// it. The engine's warm-up calls both paths, streamed writes (dumps) and whole blocks (restores), until 1 MiB
    /// takes under 0.25 ms on each (0.06 ms once optimized; about 0.2 s after start-up in a quiet process).
    /// </summary>
    internal static void WarmUp(TimeSpan limit)
    {
        var data = new byte[DefaultBlockBytes];
        Span<byte> digest = stackalloc byte[FileDigest.DigestBytes];
        var fast = TimeSpan.FromMilliseconds(0.25);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            long start = Stopwatch.GetTimestamp();
            var digester = new BlockDigester();
            for (int offset = 0; offset < data.Length; offset += 64 << 10)
            {
                digester.Append(data.AsSpan(offset, 64 << 10));
            }
            digester.Finish("warm-up");
            var streamed = Stopwatch.GetElapsedTime(start);
            start = Stopwatch.GetTimestamp();
            for (int offset = 0; offset < data.Length; offset += 256 << 10)
            {
                Digest(data.AsSpan(offset, 256 << 10), digest);
            }
            if (streamed < fast && Stopwatch.GetElapsedTime(start) < fast)
            {
                return;
            }
            Thread.Sleep(10);
        }
    }

    private void EndBlock()
    {
        hash.GetHashAndReset(blocks.GetSpan(FileDigest.DigestBytes));
        blocks.Advance(FileDigest.DigestBytes);
        inBlock = 0;
    }
}
