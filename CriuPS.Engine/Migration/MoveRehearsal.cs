using CriuPS.Engine.Dump;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Migration;

/// <summary>
/// The source's half of a move's rehearsal: a sleep of our own, moved before the real process the way it will be
/// (a pre-dump round into a page server there, the final dump on top of it into another, held stopped here, restored
/// there), so that the code of that path is compiled on both machines before the real final freeze, not inside it.
/// The rehearsals of a plain checkpoint (<see cref="DumpRehearsal"/>) and of a restore there miss most of it: the
/// page server's stream, the parent chain, the hold, the lazy restore from a received chain (measured on a 1 GiB
/// move: the final dump compiled some 240 methods in its freeze, the restore there some 690 in the downtime).
/// Disposing kills the sleep, wherever the rehearsal stopped.
/// </summary>
public sealed class MoveRehearsal : IDisposable
{
    private readonly FileDescriptor handle;

    private MoveRehearsal(int processId, CancellationToken cancellation)
    {
        ProcessId = processId;
        // Held from the start: the kill must not reach another process that took the PID once the sleep is gone.
        handle = Pidfd.Open(processId);
        Move = new ProcessMove(new MoveOptions { ProcessId = processId, MaxRounds = 1, Cancellation = cancellation });
    }

    /// <summary>Starts the sleep to move.</summary>
    public static MoveRehearsal Start(CancellationToken cancellation) => new(DumpRehearsal.StartSleeper(), cancellation);

    public int ProcessId { get; }

    /// <summary>The sleep's move: one pre-dump round, then the final dump.</summary>
    public ProcessMove Move { get; }

    public void Dispose()
    {
        try
        {
            Pidfd.SendSignal(handle, Signals.SIGKILL);
        }
        catch (NativeException)
        {
            // gone already: the held tree was killed
        }
        handle.Dispose();
    }
}
