using System.Management.Automation;
using CriuPS.Engine.Errors;

namespace CriuPS;

/// <summary>Turns engine failures into PowerShell error records with stable ids, fitting categories and a recommended action.</summary>
internal static class ErrorRecords
{
    public static ErrorRecord From(Exception exception, object? target)
    {
        if (exception is CheckpointException e)
        {
            return new ErrorRecord(e, e.Kind.ToString(), Category(e.Kind), e.Target ?? target)
            {
                // The message names the log of the run when there is one; the action says what the user can do.
                ErrorDetails = new ErrorDetails(e.LogPath is null ? e.Message : $"{e.Message} (log: {e.LogPath})")
                {
                    RecommendedAction = e.RecommendedAction,
                },
            };
        }
        // Engine calls name the paths they are denied; this catches a denial in the cmdlets' own file handling.
        return exception is UnauthorizedAccessException
            ? new ErrorRecord(exception, nameof(CheckpointErrorKind.PermissionDenied), ErrorCategory.PermissionDenied, target)
            : new ErrorRecord(exception, "UnexpectedError", ErrorCategory.NotSpecified, target);
    }

    private static ErrorCategory Category(CheckpointErrorKind kind) => kind switch
    {
        CheckpointErrorKind.ProcessNotFound => ErrorCategory.ObjectNotFound,
        CheckpointErrorKind.KernelThread => ErrorCategory.InvalidArgument,
        CheckpointErrorKind.SelfCheckpoint => ErrorCategory.InvalidOperation,
        CheckpointErrorKind.NotTraceable => ErrorCategory.PermissionDenied,
        CheckpointErrorKind.PermissionDenied => ErrorCategory.PermissionDenied,
        CheckpointErrorKind.InsufficientPrivilege => ErrorCategory.PermissionDenied,
        CheckpointErrorKind.Unsupported => ErrorCategory.NotImplemented,
        CheckpointErrorKind.ShellJobRequired => ErrorCategory.InvalidOperation,
        CheckpointErrorKind.TcpEstablishedRequired => ErrorCategory.InvalidOperation,
        CheckpointErrorKind.ImagePathUnusable => ErrorCategory.ResourceExists,
        CheckpointErrorKind.ImageNotFound => ErrorCategory.ObjectNotFound,
        CheckpointErrorKind.ImageCorrupt => ErrorCategory.InvalidData,
        CheckpointErrorKind.ImageIncompatible => ErrorCategory.InvalidOperation,
        CheckpointErrorKind.InvalidImageData => ErrorCategory.InvalidData,
        CheckpointErrorKind.PidInUse => ErrorCategory.ResourceExists,
        CheckpointErrorKind.FreezeTimeout => ErrorCategory.OperationTimeout,
        CheckpointErrorKind.AddressInUse => ErrorCategory.ResourceExists,
        CheckpointErrorKind.TerminalInUse => ErrorCategory.ResourceExists,
        CheckpointErrorKind.ProcessExited => ErrorCategory.OperationStopped,
        CheckpointErrorKind.Cancelled => ErrorCategory.OperationStopped,
        CheckpointErrorKind.PageServerUnavailable => ErrorCategory.ConnectionError,
        CheckpointErrorKind.PageServerUntrusted => ErrorCategory.SecurityError,
        CheckpointErrorKind.PageServerRefused => ErrorCategory.InvalidOperation,
        CheckpointErrorKind.CertificateUnusable => ErrorCategory.InvalidData,
        CheckpointErrorKind.DestinationUnsuitable => ErrorCategory.InvalidOperation,
        CheckpointErrorKind.MoveFailed => ErrorCategory.OperationStopped,
        _ => ErrorCategory.NotSpecified,
    };
}
