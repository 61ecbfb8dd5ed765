using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Signals;

/// <summary>
/// Signals queued but not yet delivered (signal_queue_entry): read without dequeuing (PTRACE_PEEKSIGINFO), and
/// queued again on restore with their full siginfo, while every signal is still blocked.
/// </summary>
internal static class PendingSignals
{
    public static SignalQueueEntry Read(int tid, bool shared)
    {
        var queue = new SignalQueueEntry();
        foreach (var info in Native.Interop.Ptrace.PeekPendingSignals(tid, shared))
        {
            queue.Signals.Add(new SiginfoEntry { Siginfo = Google.Protobuf.ByteString.CopyFrom(info) });
        }
        return queue;
    }

    /// <summary>Queues saved signals: process-wide ones (<paramref name="tid"/> null) or those of one thread (its id as it sees itself).</summary>
    public static void Queue(RestoringProcess process, RemoteSyscaller caller, SignalQueueEntry? queue, int? tid)
    {
        if (queue is null)
        {
            return;
        }
        foreach (var entry in queue.Signals)
        {
            var info = entry.Siginfo.Span;
            int signal = BitConverter.ToInt32(info);
            process.Injection.Scratch.Reset();
            var address = process.Injection.Scratch.Put(info);
            if (tid is null)
            {
                caller.Checked($"rt_sigqueueinfo({signal})", RemoteCall.RtSigqueueinfo(PidLevels.Own(process.Images.Pstree), signal, address));
            }
            else
            {
                caller.Checked($"rt_tgsigqueueinfo({signal})", RemoteCall.RtTgsigqueueinfo(PidLevels.Own(process.Images.Pstree), tid.Value, signal, address));
            }
        }
    }
}
