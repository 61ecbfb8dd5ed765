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
    public static TermiosEntry ToEntry(termios settings)
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
        entry.CCc.AddRange(TermiosModes.ControlCharacters(settings).Select(c => (uint)c));
        return entry;
    }

    public static termios FromEntry(TermiosEntry entry)
    {
        var settings = new termios
        {
            c_iflag = entry.CIflag,
            c_oflag = entry.COflag,
            c_cflag = entry.CCflag,
            c_lflag = entry.CLflag,
            c_line = (byte)entry.CLine,
        };
        return TermiosModes.WithControlCharacters(settings, entry.CCc.Select(c => (byte)c).ToArray());
    }

    public static WinsizeEntry ToEntry(winsize size) =>
        new() { WsRow = size.ws_row, WsCol = size.ws_col, WsXpixel = size.ws_xpixel, WsYpixel = size.ws_ypixel };

    public static winsize FromEntry(WinsizeEntry entry) =>
        new() { ws_row = (ushort)entry.WsRow, ws_col = (ushort)entry.WsCol, ws_xpixel = (ushort)entry.WsXpixel, ws_ypixel = (ushort)entry.WsYpixel };

    // TerminalQueue, rewritten in parallel, reads and refills through these names; the modes are TermiosModes'.
    public static termios ForReading(termios saved) => TermiosModes.ForReading(saved);

    public static termios ForRefill(termios saved) => TermiosModes.ForRefill(saved);

    public static termios ForRawOutput(termios saved) => TermiosModes.ForRawOutput(saved);
}
