using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// timerfds (timerfd_entry): clock, time left, interval, settime flags and the expirations not yet read. Restore
/// creates the timer in the engine, arms it with the time that was left, and sets the unread expirations with
/// TFD_IOC_SET_TICKS, as CRIU does.
/// </summary>
internal sealed class Timerfds : AnonInodeKind
{
    private const long NanosecondsPerSecond = 1_000_000_000;

    public override FdTypes Type => FdTypes.Timerfd;

    protected override string InodeName => "timerfd";

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Tfd.Flags, file.Tfd.Fown);

    public override FileEntry Dump(DescriptorDump dump)
    {
        // A periodic timer whose expiry passed unread shows no time left and 1 tick until something reads it:
        // timerfd_gettime on our copy moves it to its next expiry and counts the missed ones, as a read would,
        // without taking them. Its fdinfo then tells the truth.
        Timerfd.GetTime(dump.Copy);
        var state = TimerfdInfo.Of(FdInfo.Read(Environment.ProcessId, dump.Copy.Value));
        return new FileEntry
        {
            Type = FdTypes.Timerfd,
            Id = dump.Id,
            Tfd = new TimerfdEntry
            {
                Id = dump.Id,
                Flags = dump.Flags,
                Fown = dump.Owner,
                Clockid = (uint)state.Clock,
                Ticks = state.Ticks,
                SettimeFlags = state.SettimeFlags,
                Vsec = state.ValueSeconds,
                Vnsec = state.ValueNanoseconds,
                Isec = state.IntervalSeconds,
                Insec = state.IntervalNanoseconds,
            },
        };
    }

    public override FileDescriptor Open(RestoreSession session, FileEntry file)
    {
        var saved = file.Tfd;
        var timer = Timerfd.Create((int)saved.Clockid, 0);
        try
        {
            var spec = new ItimerSpec
            {
                IntervalSeconds = (long)saved.Isec,
                IntervalNanoseconds = (long)saved.Insec,
                ValueSeconds = (long)saved.Vsec,
                ValueNanoseconds = (long)saved.Vnsec,
            };
            int flags = 0;
            if ((saved.SettimeFlags & Timerfd.AbsoluteTime) != 0)
            {
                // The saved value is the time that was left: an absolute timer expires that long from now. Its flags
                // stay (TFD_TIMER_CANCEL_ON_SET only works with absolute times).
                flags = (int)saved.SettimeFlags;
                if (saved.Vsec != 0 || saved.Vnsec != 0)
                {
                    var (seconds, nanoseconds) = ClockGettime.Now((int)saved.Clockid);
                    long total = nanoseconds + (long)saved.Vnsec;
                    spec.ValueSeconds = seconds + (long)saved.Vsec + total / NanosecondsPerSecond;
                    spec.ValueNanoseconds = total % NanosecondsPerSecond;
                }
            }
            Timerfd.SetTime(timer, flags, spec);
            if (saved.Ticks > 0)
            {
                Timerfd.SetTicks(timer, saved.Ticks);
            }
        }
        catch
        {
            timer.Dispose();
            throw;
        }
        return timer;
    }
}
