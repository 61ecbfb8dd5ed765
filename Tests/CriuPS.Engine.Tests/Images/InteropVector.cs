namespace CriuPS.Engine.Tests.Images;

/// <summary>
/// A directory of images written by CRIU 4.2 (shared/interop, next to the repository). The
/// vectors are required: a checkout without them fails these tests instead of skipping them.
/// </summary>
internal sealed record InteropVector(string Name, string ImagesDirectory, int Pid, string LogFileName)
{
    public const string StaticName = "counter-static";
    public const string DynamicName = "counter-dyn";

    public static InteropVector Get(string name) => name switch
    {
        StaticName => Load(StaticName, "static.log"),
        DynamicName => Load(DynamicName, "dyn.log"),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "no such interop vector"),
    };

    public static IEnumerable<InteropVector> All => [Get(StaticName), Get(DynamicName)];

    public string PidText => Pid.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public string PathOf(string fileName) => Path.Combine(ImagesDirectory, fileName);

    private static InteropVector Load(string name, string logFileName)
    {
        string directory = Path.Combine(VectorsRoot(), name);
        string images = Path.Combine(directory, "images");
        string pidFile = Path.Combine(directory, "pid.txt");
        if (!Directory.Exists(images) || !File.Exists(pidFile))
            throw new InvalidOperationException($"interop vector {name} is missing: expected {images} and {pidFile}");
        return new InteropVector(name, images, int.Parse(File.ReadAllText(pidFile).Trim(),
            System.Globalization.CultureInfo.InvariantCulture), logFileName);
    }

    private static string VectorsRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "CriuPS.sln")))
                return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "interop", "criu-4.2"));
        throw new InvalidOperationException($"no CriuPS.sln above {AppContext.BaseDirectory}: cannot locate shared/interop");
    }
}
