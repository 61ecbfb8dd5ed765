using CriuPS.Engine.Dump;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Model;
using CriuPS.Engine.Restore;
using static CriuPS.Engine.EngineProcess.EngineProcessProtocol;

namespace CriuPS.Engine.EngineProcess;

/// <summary>
/// criups-engine's side: reads one checkpoint or restore request, runs it, and reports on the way (see
/// <see cref="EngineProcessProtocol"/>). The program is compiled ahead of time (NativeAOT): nothing of it is compiled
/// when it runs, so a fresh PowerShell's first checkpoint or restore costs what its tenth does, and no dump rehearsal
/// is needed.
/// </summary>
public static class EngineProcessServer
{
    /// <summary>Serves one request; returns the program's exit status (0: saved, 1: failed, reported as such).</summary>
    public static int Serve(Stream input, Stream output)
    {
        // Beside the reading of the request.
        EngineWarmup.Start();
        // Buffered, and flushed after each report: unbuffered, the image's 10,000 areas took 60,000 write calls.
        using var writer = new BinaryWriter(new BufferedStream(output, 64 << 10));
        using var cancellation = new CancellationTokenSource();
        var events = new EventWriter(writer, cancellation);
        object request;
        try
        {
            request = ReadRequest(new BinaryReader(input), cancellation.Token, events.RootCreated);
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            events.Failed(e);
            return 1;
        }
        WatchForCancellation(input, cancellation);
        try
        {
            bool delivered = request is RestoreOptions restore
                ? events.Restored(RestorePipeline.Run(restore, events))
                : events.Saved(DumpPipeline.Run((DumpOptions)request, events));
            return delivered ? 0 : 1;
        }
        catch (Exception e)
        {
            events.Failed(e);
            return 1;
        }
    }

    // The session keeps our stdin open until the end; its end (closed on Ctrl+C, or by the kernel when the session
    // dies) cancels the checkpoint, which releases the process and removes what was written, as in the session.
    private static void WatchForCancellation(Stream input, CancellationTokenSource cancellation)
    {
        var watcher = new Thread(() =>
        {
            var buffer = new byte[64];
            try
            {
                while (input.Read(buffer) > 0)
                {
                }
            }
            catch (IOException)
            {
            }
            try
            {
                cancellation.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // the operation ended first
            }
        })
        {
            Name = "criups-engine stdin",
            IsBackground = true,
        };
        watcher.Start();
    }

    // Reports as they come, and the last one. A report that cannot be written (the session is gone) cancels the
    // operation rather than fail where it is: the engine reports from its failure paths too, which must go on and
    // release the processes.
    private sealed class EventWriter(BinaryWriter writer, CancellationTokenSource cancellation) : IEngineObserver
    {
        public void Phase(string name) => Text(EventKind.Phase, name);

        public void Warning(string message) => Text(EventKind.Warning, message);

        public void Detail(string message) => Text(EventKind.Detail, message);

        public void Progress(string activity, long done, long total) => Write(w =>
        {
            w.Write((byte)EventKind.Progress);
            w.Write(activity);
            w.Write(done);
            w.Write(total);
        });

        /// <summary>The saved image, last; whether the session got it.</summary>
        public bool Saved(CheckpointImage image) => Write(w =>
        {
            w.Write((byte)EventKind.Saved);
            CheckpointImageCodec.Write(w, image);
        });

        /// <summary>The restored process, last; whether the session got it.</summary>
        public bool Restored(RestoredProcess restored) => Write(w =>
        {
            w.Write((byte)EventKind.Restored);
            RestoredProcessCodec.Write(w, restored);
        });

        /// <summary>The restored root exists, as the session's child, which the session reaps whatever happens next.</summary>
        public void RootCreated(int pid) => Write(w =>
        {
            w.Write((byte)EventKind.RootCreated);
            w.Write(pid);
        });

        /// <summary>The failure, last.</summary>
        public void Failed(Exception failure) => Write(w => WriteFailure(w, failure));

        private void Text(EventKind kind, string text) => Write(w =>
        {
            w.Write((byte)kind);
            w.Write(text);
        });

        private bool Write(Action<BinaryWriter> frame)
        {
            try
            {
                lock (writer)
                {
                    frame(writer);
                    writer.Flush();
                }
                return true;
            }
            catch (IOException)
            {
                cancellation.Cancel();
                return false;
            }
        }
    }
}
