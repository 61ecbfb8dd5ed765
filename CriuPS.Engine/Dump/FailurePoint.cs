namespace CriuPS.Engine.Dump;

/// <summary>
/// Named points where a test can make a dump fail on purpose (CRIUPS_FAIL_AT or DumpOptions.FailAt), to prove that
/// a failed dump leaves the process running exactly as before and nothing in the image path.
/// </summary>
internal static class FailurePoint
{
    public const string AfterSeize = "after-seize";
    public const string MidMemory = "mid-memory";
    public const string BeforeKill = "before-kill";

    /// <summary>
    /// A dump to a page server flips one byte of the first pages file on its way, after it was digested, as a faulty
    /// network or memory would: the server must find it and refuse the image.
    /// </summary>
    public const string DamageInFlight = "damage-in-flight";

    public static readonly IReadOnlyList<string> All = new[] { AfterSeize, MidMemory, BeforeKill, DamageInFlight };

    public static void Check(string? configured, string point)
    {
        if (Is(configured, point))
        {
            throw new InjectedFailureException(point);
        }
    }

    /// <summary>Whether the test asked for <paramref name="point"/>, for points that do harm rather than throw.</summary>
    public static bool Is(string? configured, string point) => string.Equals(configured, point, StringComparison.Ordinal);
}

/// <summary>The failure a test asked for.</summary>
internal sealed class InjectedFailureException : Exception
{
    public InjectedFailureException(string point)
        : base($"injected test failure at '{point}'")
    {
    }
}
