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

    public static readonly IReadOnlyList<string> All = new[] { AfterSeize, MidMemory, BeforeKill };

    public static void Check(string? configured, string point)
    {
        if (string.Equals(configured, point, StringComparison.Ordinal))
        {
            throw new InjectedFailureException(point);
        }
    }
}

/// <summary>The failure a test asked for.</summary>
internal sealed class InjectedFailureException : Exception
{
    public InjectedFailureException(string point)
        : base($"injected test failure at '{point}'")
    {
    }
}
