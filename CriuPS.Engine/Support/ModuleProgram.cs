namespace CriuPS.Engine.Support;

/// <summary>
/// The programs the module ships beside its assemblies (criups-engine, criups-init). A module installed from its
/// package has them without their execute bits (Install-PSResource unpacks a .nupkg, a zip that keeps no Unix modes):
/// they are given back, where this session may, when a program is first needed.
/// </summary>
internal static class ModuleProgram
{
    private const UnixFileMode Execute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>
    /// Where the program <paramref name="name"/> is: beside the engine, in the module's folder; which is criups-engine's
    /// own folder when the engine is compiled into it (its assembly then has no file of its own: no location).
    /// </summary>
    public static string PathOf(string name) => Path.Combine(EngineFolder, name);

    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("SingleFile", "IL3000",
        Justification = "Empty in a single-file program (criups-engine), which is what is asked here.")]
    private static string EngineFolder => typeof(ModuleProgram).Assembly.Location is { Length: > 0 } location
        ? Path.GetDirectoryName(location) ?? "."
        : AppContext.BaseDirectory;

    /// <summary>The program's path, once it exists and may be run; null, with why in <paramref name="problem"/>, when not.</summary>
    public static string? Find(string name, out string problem)
    {
        var path = PathOf(name);
        if (!File.Exists(path))
        {
            problem = $"the module's program '{path}' is missing";
            return null;
        }
        var mode = File.GetUnixFileMode(path);
        if ((mode & Execute) != Execute)
        {
            try
            {
                File.SetUnixFileMode(path, mode | Execute);
            }
            catch (UnauthorizedAccessException)
            {
                problem = $"the module's program '{path}' may not be run (mode {Convert.ToString((int)mode, 8)}), and this session may not change that";
                return null;
            }
        }
        problem = "";
        return path;
    }
}
