using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// struct termios (what <see cref="Terminal.GetAttributes"/> reads and <see cref="Terminal.SetAttributes"/> sets): its
/// control characters, and the passing modes under which the engine reads a terminal's queued input or puts it back
/// without the line discipline acting on it a second time.
/// </summary>
public static unsafe class TermiosModes
{
    /// <summary>_POSIX_VDISABLE: a control character set to it is no control character.</summary>
    private const byte Disabled = 0;

    /// <summary>The <see cref="Terminal.ControlCharacters"/> control characters (c_cc).</summary>
    public static byte[] ControlCharacters(in termios settings)
    {
        var characters = new byte[Terminal.ControlCharacters];
        for (int i = 0; i < characters.Length; i++)
        {
            characters[i] = settings.c_cc[i];
        }
        return characters;
    }

    /// <summary>The settings with their first control characters set to <paramref name="characters"/> (the rest as they were).</summary>
    public static termios WithControlCharacters(termios settings, IReadOnlyList<byte> characters)
    {
        for (int i = 0; i < Math.Min(characters.Count, Terminal.ControlCharacters); i++)
        {
            settings.c_cc[i] = characters[i];
        }
        return settings;
    }

    /// <summary>
    /// Settings under which every queued byte can be read at once: not canonical (a partial line is readable too), and a
    /// read returns what is there without waiting (VMIN = VTIME = 0).
    /// </summary>
    public static termios ForReading(termios saved)
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
    public static termios ForRefill(termios saved)
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
}
