using CriuPS.Engine.Images;

namespace CriuPS.Engine.Tests.Images;

/// <summary>Every image CRIU wrote decodes, and re-encodes to the very same bytes.</summary>
public sealed class VectorRoundTripTests
{
    public static TheoryData<string, string> ImageFiles()
    {
        var data = new TheoryData<string, string>();
        foreach (InteropVector vector in InteropVector.All)
            foreach (string path in Directory.GetFiles(vector.ImagesDirectory).Order(StringComparer.Ordinal))
            {
                string name = Path.GetFileName(path);
                if (name != "dump.log" && !name.StartsWith("pages-", StringComparison.Ordinal))
                    data.Add(vector.Name, name);
            }
        return data;
    }

    [Theory]
    [InlineData(InteropVector.StaticName)]
    [InlineData(InteropVector.DynamicName)]
    public void VectorHoldsTheImagesOfADump(string vectorName)
    {
        InteropVector vector = InteropVector.Get(vectorName);
        string[] expected =
        [
            $"core-{vector.Pid}.img", "dump.log", "fdinfo-2.img", "files.img", $"fs-{vector.Pid}.img",
            $"ids-{vector.Pid}.img", "inventory.img", $"mm-{vector.Pid}.img", $"pagemap-{vector.Pid}.img",
            "pages-1.img", "pipes-data.img", "pstree.img", "seccomp.img", "stats-dump", "timens-0.img",
        ];
        Assert.Equal(expected, Directory.GetFiles(vector.ImagesDirectory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(ImageFiles))]
    public void ImageIsIdentifiedDecodedAndReencodedByteForByte(string vectorName, string fileName)
    {
        string path = InteropVector.Get(vectorName).PathOf(fileName);
        byte[] original = File.ReadAllBytes(path);

        ImageType? type = ImageTypes.Identify(fileName);
        Assert.NotNull(type);
        Assert.Contains(type, ImageTypes.IdentifyByMagic(original));

        IReadOnlyList<ImageEntry> entries = ImageReader.ReadAll(path);
        Assert.NotEmpty(entries);

        using var temp = new TempDirectory();
        string copy = temp.PathOf(fileName);
        ImageWriter.WriteAll(copy, type, entries);
        Assert.Equal(original, File.ReadAllBytes(copy));
    }
}
