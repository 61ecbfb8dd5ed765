using CriuPS.Engine.Errors;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Privileges;

/// <summary>
/// A refusal of the kernel that reached a pipeline without a more precise error (the places CriuPS knows to need a
/// privilege name it themselves): a denied path is PermissionDenied, an operation not permitted InsufficientPrivilege,
/// both with what this session is, rather than a plain DumpFailed or RestoreFailed.
/// </summary>
internal static class AccessFailures
{
    public static CheckpointException? Explain(Exception e, object target)
    {
        string session = MissingPrivilege.DescribeSession(SessionPrivileges.Current());
        return e switch
        {
            UnauthorizedAccessException or NativeException { Errno: Errno.EACCES } => new CheckpointException(CheckpointErrorKind.PermissionDenied,
                $"{e.Message.TrimEnd('.')}; {session}.", target, "Run as the owner of the files and processes involved, or as root.", e),
            NativeException { Errno: Errno.EPERM } => MissingPrivilege.Error($"{e.Message.TrimEnd('.')}; {session}.", target, [], e),
            _ => null,
        };
    }
}
