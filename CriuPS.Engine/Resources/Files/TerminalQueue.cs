using CriuPS.Native.Interop;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// The bytes a terminal holds for its readers (tty_data_entry). Linux has no call that reads them without taking them,
/// so the dump takes them (as CRIU does) and, when the processes go on, puts them back; the restore puts them into the
/// new terminal. Put back with TIOCSTI, they enter the line discipline at once and in order, ahead of anything the
/// other end sends later. A master needs no passing settings: the termios calls on a master reach its slave, and the
/// master's own line discipline keeps the settings the kernel gave it, which leave every byte as it is.
/// </summary>
internal static class TerminalQueue
{
    /// <summary>What n_tty holds at most (N_TTY_BUF_SIZE less the byte it keeps free).</summary>
    private const int LineDisciplineRoom = 4095;

    /// <summary>Reads every byte queued for readers of <paramref name="tty"/>, a partial canonical line included.</summary>
    public static byte[] Take(FileDescriptor tty, bool master)
    {
        if (master)
        {
            return ReadAll(tty);
        }
        // Under its own settings first: bytes still on their way would otherwise meet the reading settings (and be
        // echoed as ^J instead of a new line, say).
        LetPendingIn(tty);
        var saved = Terminal.GetAttributes(tty);
        return WithSettings(tty, saved, TerminalSettings.ForReading(saved), () => ReadAll(tty));
    }

    // Bytes the other end wrote may still wait for the line discipline: polling a terminal with nothing to read lets
    // them in (n_tty_poll flushes the pending input).
    private static void LetPendingIn(FileDescriptor tty) => Poll.Once(tty, Poll.In, timeoutMilliseconds: 0);

    /// <summary>
    /// Puts <paramref name="data"/> back into the queue of readers of <paramref name="tty"/>, under its current settings.
    /// What the line discipline cannot hold is written by the other end, <paramref name="peer"/>, with no output
    /// processing, and waits in the pair's buffer as it did; that part goes through the line discipline under the
    /// terminal's settings once a reader makes room. Returns the bytes that found no room (0 unless more was queued
    /// than the pair holds).
    /// </summary>
    public static int Put(FileDescriptor tty, FileDescriptor? peer, ReadOnlySpan<byte> data, bool master)
    {
        int direct = Math.Min(data.Length, LineDisciplineRoom);
        var first = data[..direct].ToArray();
        if (master)
        {
            Terminal.InsertInput(tty, first);
        }
        else
        {
            var saved = Terminal.GetAttributes(tty);
            WithSettings(tty, saved, TerminalSettings.ForRefill(saved), () =>
            {
                Terminal.InsertInput(tty, first);
                return 0;
            });
        }
        if (direct == data.Length)
        {
            return 0;
        }
        if (peer is null)
        {
            return data.Length - direct;
        }
        var rest = data[direct..].ToArray();
        if (!master)
        {
            return WriteWithoutWaiting(peer, rest); // the peer is the master, whose output is never processed
        }
        var peerSettings = Terminal.GetAttributes(peer);
        return WithSettings(peer, peerSettings, TerminalSettings.ForRawOutput(peerSettings), () => WriteWithoutWaiting(peer, rest));
    }

    /// <summary>
    /// Runs <paramref name="action"/> with the terminal under <paramref name="passing"/> settings, then gives it back
    /// <paramref name="saved"/>. Locked settings bits (TIOCSLCKTRMIOS) would keep the passing ones from taking effect:
    /// they are lifted meanwhile.
    /// </summary>
    private static T WithSettings<T>(FileDescriptor tty, termios saved, termios passing, Func<T> action)
    {
        var locked = Terminal.GetLockedAttributes(tty);
        bool anyLocked = !IsEmpty(locked);
        if (anyLocked)
        {
            Terminal.SetLockedAttributes(tty, default);
        }
        Terminal.SetAttributes(tty, passing);
        try
        {
            return action();
        }
        finally
        {
            Terminal.SetAttributes(tty, saved);
            if (anyLocked)
            {
                Terminal.SetLockedAttributes(tty, locked);
            }
        }
    }

    private static bool IsEmpty(termios settings) =>
        settings.c_iflag == 0 && settings.c_oflag == 0 && settings.c_cflag == 0 && settings.c_lflag == 0 && settings.c_line == 0
        && TermiosModes.ControlCharacters(settings).All(c => c == 0);

    private static byte[] ReadAll(FileDescriptor tty)
    {
        var data = new List<byte>();
        var buffer = new byte[LineDisciplineRoom + 1];
        while (true)
        {
            int queued = Terminal.QueuedInput(tty);
            if (queued == 0)
            {
                LetPendingIn(tty);
                queued = Terminal.QueuedInput(tty);
                if (queued == 0)
                {
                    break;
                }
            }
            long n = tty.TryRead(buffer.AsSpan(0, Math.Min(queued, buffer.Length)));
            if (n < 0)
            {
                throw new NativeException("read of queued terminal input", (int)-n);
            }
            if (n == 0)
            {
                break;
            }
            data.AddRange(buffer.AsSpan(0, (int)n));
        }
        return data.ToArray();
    }

    // Returns the bytes that did not fit.
    private static int WriteWithoutWaiting(FileDescriptor peer, byte[] data)
    {
        int flags = Fcntl.Call(peer, Fcntl.F_GETFL);
        Fcntl.Call(peer, Fcntl.F_SETFL, flags | O.NONBLOCK);
        try
        {
            int done = 0;
            while (done < data.Length)
            {
                long n = peer.TryWrite(data.AsSpan(done));
                if (n <= 0)
                {
                    int errno = n < 0 ? (int)-n : Errno.EAGAIN;
                    if (errno == Errno.EAGAIN)
                    {
                        break;
                    }
                    throw new NativeException("write of queued terminal data", errno);
                }
                done += (int)n;
            }
            return data.Length - done;
        }
        finally
        {
            Fcntl.Call(peer, Fcntl.F_SETFL, flags);
        }
    }
}
