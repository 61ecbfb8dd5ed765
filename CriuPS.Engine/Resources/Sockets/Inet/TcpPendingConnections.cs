using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Resources.Files;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// A TCP listener's connections done by the kernel and not yet accepted (its accept queue). No call takes them from
/// the queue without accepting them, so they cannot be saved: without -SkipInFlight the listener is refused; with
/// it (CRIU's --skip-in-flight) the listener is saved alone and they are dropped from the image. The dump neither
/// accepts nor resets them, so a process left running keeps them; a restored listener starts with an empty queue
/// and the clients of the dropped connections find them reset once the original listener is gone.
/// </summary>
internal static class TcpPendingConnections
{
    /// <summary>The switch that saves such a listener without its pending connections, as messages name it.</summary>
    public const string SkipInFlightSwitch = "-SkipInFlight";

    /// <summary>Why the listener cannot be saved as it is (the pre-flight check), or null.</summary>
    public static string? Problem(InetSocketInfo info, string what, DumpOptions options) =>
        info.State == InetSocketInfo.Listen && info.AcceptQueue > 0 && !options.SkipInFlight
            ? $"{what} has {info.AcceptQueue} connection(s) waiting to be accepted, which CriuPS cannot save (only the process can take them from the queue); {SkipInFlightSwitch} saves the listener and drops them"
            : null;

    /// <summary>
    /// At the dump, the tree frozen: refuses a listener that got pending connections since the pre-flight check
    /// (without the switch), or says how many are dropped.
    /// </summary>
    public static void Dump(DescriptorDump dump, InetSocketInfo info, string shown)
    {
        if (info.State != InetSocketInfo.Listen || info.AcceptQueue == 0)
        {
            return;
        }
        if (!dump.Session.Options.SkipInFlight)
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"The {shown} has {info.AcceptQueue} connection(s) waiting to be accepted (they came since the pre-flight check), which CriuPS cannot save; {SkipInFlightSwitch} saves the listener and drops them.", dump.Probe.Pid);
        }
        dump.Session.Log.Detail($"{shown}: {info.AcceptQueue} connection(s) waiting to be accepted are dropped from the image ({SkipInFlightSwitch}); their clients find them reset once this listener is gone");
    }
}
