using System.Buffers;

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

    private readonly LongXxHash128 hash = new();
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
    public static void Digest(ReadOnlySpan<byte> block, Span<byte> digest) => LongXxHash128.Hash(block, digest);

    /// <summary>
    /// Compiles the hashing code, streamed (dumps) and whole (restores), on a few KiB: it runs optimized from its first
    /// call (see <see cref="LongXxHash128"/>), so a first dump or restore hashes at full speed without waiting.
    /// </summary>
    internal static void WarmUp()
    {
        var data = new byte[4096];
        Span<byte> digest = stackalloc byte[FileDigest.DigestBytes];
        var digester = new BlockDigester(blockBytes: 3000);
        digester.Append(data.AsSpan(0, 1500));
        digester.Append(data.AsSpan(1500));
        digester.Finish("warm-up");
        Digest(data, digest);
    }

    private void EndBlock()
    {
        hash.GetHashAndReset(blocks.GetSpan(FileDigest.DigestBytes));
        blocks.Advance(FileDigest.DigestBytes);
        inBlock = 0;
    }
}
