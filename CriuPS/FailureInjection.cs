namespace CriuPS;

/// <summary>
/// Test hook: CRIUPS_FAIL_AT names a point where Checkpoint-Process or Restore-Process fails on purpose (the engine's
/// FailurePoint lists them), to prove what a failure leaves behind; never set it in production.
/// </summary>
internal static class FailureInjection
{
    private const string Variable = "CRIUPS_FAIL_AT";

    /// <summary>Move-Process: the session's PowerShell on the destination dies right after the final dump, before the restore there.</summary>
    public const string MoveSessionLost = "move-session-lost";

    /// <summary>The point named in the environment of this process, read when an operation starts.</summary>
    public static string? RequestedPoint => Environment.GetEnvironmentVariable(Variable);
}
