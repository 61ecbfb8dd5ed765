using System.IO.Hashing;
using CriuPS.Engine.Images.Digests;

namespace CriuPS.Engine.Tests.Digests;

/// <summary>Our loop over long inputs computes XxHash128 bit for bit, whole or streamed in pieces of any size.</summary>
public sealed class LongXxHash128Tests
{
    // Around every boundary of XXH3: its short paths (up to 240), a stripe (64), a block (1024), and a digest block.
    public static TheoryData<int> Sizes => new()
    {
        0, 1, 16, 17, 128, 129, 240, 241, 255, 256, 1023, 1024, 1025, 1087, 1088, 1089, 2047, 2048, 2049, 3000,
        65536, 65537, 1 << 20, (1 << 20) + 1, (1 << 20) - 1,
    };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void HashingWholeEqualsXxHash128(int size)
    {
        var data = DigestTests.RandomBytes(size, seed: size);
        var ours = new byte[LongXxHash128.HashBytes];

        LongXxHash128.Hash(data, ours);

        Assert.Equal(XxHash128.Hash(data), ours);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void HashingInPiecesOfAnySizeEqualsXxHash128(int size)
    {
        var data = DigestTests.RandomBytes(size, seed: size + 1);
        var expected = XxHash128.Hash(data);
        var hash = new LongXxHash128();
        foreach (int largest in new[] { 1, 63, 64, 65, 1000, 1024, 1025, 5000, 70_000 })
        {
            var random = new Random(largest);
            for (int offset = 0; offset < data.Length;)
            {
                int n = Math.Min(data.Length - offset, random.Next(0, largest + 1));
                hash.Append(data.AsSpan(offset, n));
                offset += n;
            }
            var ours = new byte[LongXxHash128.HashBytes];
            hash.GetHashAndReset(ours);
            Assert.Equal(expected, ours);
        }
    }
}
