using System.Text.Json.Nodes;
using CriuPS.Engine.Images.Json;

namespace CriuPS.Engine.Tests.Images;

/// <summary>
/// ImageJson shows CRIU's images exactly as crit does: every image of the interop vectors decodes to the JSON
/// that "crit decode --pretty" printed for it (CritJson/, recorded once; see its README), value for value.
/// </summary>
public sealed class JsonCompatibilityTests
{
    public static TheoryData<string, string> CritDecodedImages()
    {
        var data = new TheoryData<string, string>();
        foreach (InteropVector vector in InteropVector.All)
            foreach (string json in Directory.GetFiles(Path.Combine(CritJsonRoot, vector.Name), "*.json").Order(StringComparer.Ordinal))
                data.Add(vector.Name, Path.GetFileNameWithoutExtension(json));
        return data;
    }

    private static string CritJsonRoot => Path.Combine(AppContext.BaseDirectory, "Images", "CritJson");

    [Fact]
    public void CritsJsonIsThereForEveryImageCritCanDecode()
    {
        foreach (InteropVector vector in InteropVector.All)
        {
            var images = Directory.GetFiles(vector.ImagesDirectory).Select(Path.GetFileName)
                .Where(n => n != "dump.log" && !n!.StartsWith("pages-", StringComparison.Ordinal));
            var recorded = Directory.GetFiles(Path.Combine(CritJsonRoot, vector.Name), "*.json").Select(Path.GetFileNameWithoutExtension);
            Assert.Equal(images.Order(StringComparer.Ordinal), recorded.Order(StringComparer.Ordinal));
        }
    }

    [Theory]
    [MemberData(nameof(CritDecodedImages))]
    public void ImageDecodesToWhatCritShows(string vectorName, string fileName)
    {
        JsonNode expected = JsonNode.Parse(File.ReadAllText(Path.Combine(CritJsonRoot, vectorName, fileName + ".json")))!;
        JsonNode actual = JsonNode.Parse(ImageJson.Read(InteropVector.Get(vectorName).PathOf(fileName)).ToJsonString())!;
        Assert.True(JsonNode.DeepEquals(expected, actual), $"{fileName}: first difference at {FirstDifference(expected, actual, "")}");
    }

    [Fact]
    public void HintsShowAsCritShowsThem()
    {
        InteropVector vector = InteropVector.Get(InteropVector.DynamicName);
        JsonObject mm = ImageJson.Read(vector.PathOf($"mm-{vector.PidText}.img"));
        JsonNode vma = mm["entries"]![0]!["vmas"]![0]!;
        Assert.StartsWith("0x", (string)vma["start"]!, StringComparison.Ordinal);
        Assert.Equal("PROT_READ", (string)vma["prot"]!);
        Assert.Equal("VMA_AREA_REGULAR | VMA_FILE_PRIVATE", (string)vma["status"]!);
        JsonObject core = ImageJson.Read(vector.PathOf($"core-{vector.PidText}.img"));
        Assert.Equal("X86_64", (string)core["entries"]![0]!["mtype"]!);
        Assert.Equal("Alive", (string)core["entries"]![0]!["tc"]!["task_state"]!);
        // hex on a message field holds for every field inside it
        Assert.StartsWith("0x", (string)core["entries"]![0]!["thread_info"]!["gpregs"]!["ss"]!, StringComparison.Ordinal);
        JsonObject pipes = ImageJson.Read(vector.PathOf("pipes-data.img"));
        Assert.Equal("aGVsbG8gcGlwZQo=\n", (string)pipes["entries"]![0]!["extra"]!);
    }

    // Where two JSON trees first differ, as a path, to make a failure readable.
    private static string FirstDifference(JsonNode? expected, JsonNode? actual, string path)
    {
        switch (expected, actual)
        {
            case (JsonObject e, JsonObject a):
                if (!e.Select(p => p.Key).SequenceEqual(a.Select(p => p.Key)))
                    return $"{path}: keys {string.Join(",", e.Select(p => p.Key))} vs {string.Join(",", a.Select(p => p.Key))}";
                foreach (var (key, value) in e)
                    if (!JsonNode.DeepEquals(value, a[key]))
                        return FirstDifference(value, a[key], $"{path}.{key}");
                break;
            case (JsonArray e, JsonArray a):
                if (e.Count != a.Count)
                    return $"{path}: {e.Count} items vs {a.Count}";
                for (int i = 0; i < e.Count; i++)
                    if (!JsonNode.DeepEquals(e[i], a[i]))
                        return FirstDifference(e[i], a[i], $"{path}[{i}]");
                break;
        }
        return $"{path}: {expected?.ToJsonString()} vs {actual?.ToJsonString()}";
    }
}
