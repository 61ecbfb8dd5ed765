using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// Terminal settings as the images hold them (termios_entry, winsize_entry), and the passing settings the engine gives
/// a terminal to read or put back its queued input without the line discipline acting on it a second time.
/// </summary>
internal static class TerminalSettings
{
    public static unsafe TermiosEntry ToEntry(termios settings)
    {
        // The kernel's struct termios (TCGETS) carries no speeds; CRIU writes them as 0 too.
        var entry = new TermiosEntry
        {
            CIflag = settings.c_iflag,
            COflag = settings.c_oflag,
            CCflag = settings.c_cflag,
            CLflag = settings.c_lflag,
            CLine = settings.c_line,
            CIspeed = 0,
            COspeed = 0,
        };
        for (int i = 0; i < Terminal.ControlCharacters; i++)
        {
            entry.CCc.Add(settings.c_cc[i]);
        }
        return entry;
    }

    public static unsafe termios FromEntry(TermiosEntry entry)
    {
        var settings = new termios
        {
            c_iflag = entry.CIflag,
            c_oflag = entry.COflag,
            c_cflag = entry.CCflag,
            c_lflag = entry.CLflag,
            c_line = (byte)entry.CLine,
        };
        for (int i = 0; i < Math.Min(entry.CCc.Count, Terminal.ControlCharacters); i++)
        {
            settings.c_cc[i] = (byte)entry.CCc[i];
        }
        return settings;
    }

    public static WinsizeEntry ToEntry(winsize size) =>
        new() { WsRow = size.ws_row, WsCol = size.ws_col, WsXpixel = size.ws_xpixel, WsYpixel = size.ws_ypixel };

    public static winsize FromEntry(WinsizeEntry entry) =>
        new() { ws_row = (ushort)entry.WsRow, ws_col = (ushort)entry.WsCol, ws_xpixel = (ushort)entry.WsXpixel, ws_ypixel = (ushort)entry.WsYpixel };

    /// <summary>
    /// Settings under which every queued byte can be read at once: not canonical (a partial line is readable too), and a
    /// read returns what is there without waiting (VMIN = VTIME = 0).
    /// </summary>
    public static unsafe termios ForReading(termios saved)
    {
        var reading = saved;
        reading.c_lflag &= ~(uint)LibC.ICANON;
        reading.c_cc[LibC.VMIN] = 0;
        reading.c_cc[LibC.VTIME] = 0;
        return reading;
    }

    /// <summary>
    /// Settings under which queued bytes read earlier go back into the line discipline as they were: the line
    /// discipline processed them when they first arrived (translated CR and NL, doubled 0xff for PARMRK, echoed,
    /// signalled, edited), so none of that may happen again. Canonical mode stays, so that lines end where they ended:
    /// the characters that end a line (NL, VEOL, VEOL2) keep their meaning, those that edit one are disabled.
    /// </summary>
    public static unsafe termios ForRefill(termios saved)
    {
        var refill = saved;
        refill.c_iflag &= ~(uint)(LibC.ICRNL | LibC.INLCR | LibC.IGNCR | LibC.ISTRIP | LibC.IUCLC | LibC.PARMRK);
        refill.c_lflag &= ~(uint)(LibC.ECHO | LibC.ECHOE | LibC.ECHOK | LibC.ECHONL | LibC.ECHOCTL | LibC.ECHOPRT | LibC.ECHOKE | LibC.ISIG);
        foreach (int editing in new[] { LibC.VERASE, LibC.VKILL, LibC.VEOF, LibC.VWERASE, LibC.VLNEXT, LibC.VREPRINT })
        {
            refill.c_cc[editing] = Disabled;
        }
        return refill;
    }

    /// <summary>Settings under which output bytes read earlier go back out unchanged: no output processing (OPOST).</summary>
    public static termios ForRawOutput(termios saved)
    {
        var raw = saved;
        raw.c_oflag &= ~(uint)LibC.OPOST;
        return raw;
    }

    /// <summary>_POSIX_VDISABLE: a control character set to it is no control character.</summary>
    private const byte Disabled = 0;
}
