using System.Globalization;

namespace CriuPS.Engine.Images.Digests;

/// <summary>
/// What criups-digests.img records of one image file: its size and the XxHash128 of each block of
/// <see cref="BlockBytes"/> bytes (the last block may be shorter; an empty file has none).
/// </summary>
/// <param name="Blocks">The digests, <see cref="DigestBytes"/> each, in file order.</param>
internal sealed record FileDigest(string Name, long Size, int BlockBytes, byte[] Blocks)
{
    /// <summary>An XxHash128 digest: 16 bytes.</summary>
    public const int DigestBytes = 16;

    public int BlockCount => Blocks.Length / DigestBytes;

    /// <summary>The digest of block <paramref name="index"/>.</summary>
    public ReadOnlySpan<byte> Block(int index) => Blocks.AsSpan(index * DigestBytes, DigestBytes);

    /// <summary>The bytes of the file that block <paramref name="index"/> covers.</summary>
    public (long Offset, int Length) BlockRange(int index)
    {
        long offset = (long)index * BlockBytes;
        return (offset, (int)Math.Min(BlockBytes, Size - offset));
    }

    /// <summary>How many blocks a file of <paramref name="size"/> bytes has.</summary>
    public static long BlocksOf(long size, int blockBytes) => size / blockBytes + (size % blockBytes == 0 ? 0 : 1);

    /// <summary>
    /// What differs in <paramref name="actual"/> (the same file digested again, or as it arrived), for a message:
    /// null when nothing does.
    /// </summary>
    public string? Difference(FileDigest actual)
    {
        if (actual.Size != Size)
        {
            return SizeProblem(actual.Size);
        }
        if (actual.BlockBytes != BlockBytes)
        {
            return $"digested in blocks of {actual.BlockBytes} bytes, not {BlockBytes}";
        }
        for (int i = 0; i < BlockCount; i++)
        {
            if (!Block(i).SequenceEqual(actual.Block(i)))
            {
                return BlockProblem(i);
            }
        }
        return null;
    }

    /// <summary>The problem of a file found with <paramref name="actualSize"/> bytes instead of <see cref="Size"/>.</summary>
    public string SizeProblem(long actualSize) => actualSize < Size
        ? $"truncated: {actualSize} bytes, but {Size} were written"
        : $"{actualSize} bytes, but {Size} were written (something was added)";

    /// <summary>The problem of a block whose contents do not match their digest.</summary>
    public string BlockProblem(int index)
    {
        var (offset, length) = BlockRange(index);
        return string.Create(CultureInfo.InvariantCulture, $"damaged: bytes {offset} to {offset + length - 1} (block {index + 1} of {BlockCount}) differ from what was written");
    }
}
