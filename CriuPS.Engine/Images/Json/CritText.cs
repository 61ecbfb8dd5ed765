using System.Globalization;
using System.Numerics;
using System.Text;

namespace CriuPS.Engine.Images.Json;

/// <summary>
/// The text encodings crit uses for binary data and numbers, reproduced exactly so that CriuPS's JSON matches
/// crit's: base64 as Python's base64.encodebytes (lines of 76 characters, each ended by a newline),
/// quoted-printable as Python's quopri (binascii.b2a_qp/a2b_qp), and integers as Python's int(text, 0).
/// </summary>
internal static class CritText
{
    private const int Base64LineLength = 76;
    private const int QpMaxLineSize = 76;

    /// <summary>base64.encodebytes: "" for no bytes, else 76-character lines each followed by "\n".</summary>
    public static string ToBase64Lines(ReadOnlySpan<byte> data)
    {
        string flat = Convert.ToBase64String(data);
        var text = new StringBuilder(flat.Length + flat.Length / Base64LineLength + 1);
        for (int i = 0; i < flat.Length; i += Base64LineLength)
            text.Append(flat, i, Math.Min(Base64LineLength, flat.Length - i)).Append('\n');
        return text.ToString();
    }

    /// <summary>The bytes of base64 text, line breaks and other whitespace ignored.</summary>
    public static byte[] FromBase64(string text) => Convert.FromBase64String(text);

    /// <summary>quopri.encodestring(data) (binascii.b2a_qp with quotetabs=False, istext=True, header=False).</summary>
    public static string ToQuotedPrintable(ReadOnlySpan<byte> data)
    {
        int newline = data.IndexOf((byte)'\n');
        bool crlf = newline > 0 && data[newline - 1] == '\r';
        var output = new List<byte>(data.Length * 3);
        int lineLength = 0;
        void SoftBreak()
        {
            output.Add((byte)'=');
            if (crlf)
                output.Add((byte)'\r');
            output.Add((byte)'\n');
            lineLength = 0;
        }
        void Escape(byte b)
        {
            output.Add((byte)'=');
            output.AddRange(Encoding.ASCII.GetBytes(b.ToString("X2", CultureInfo.InvariantCulture)));
        }

        for (int i = 0; i < data.Length;)
        {
            byte b = data[i];
            bool last = i + 1 == data.Length;
            bool mustEscape = b > 126 || b == '='
                || (b == '.' && lineLength == 0 && (last || data[i + 1] is (byte)'\n' or (byte)'\r' or 0))
                || ((b == '\t' || b == ' ') && last)
                || (b < 33 && b != '\r' && b != '\n' && b != '\t' && b != ' ');
            if (mustEscape)
            {
                if (lineLength + 3 >= QpMaxLineSize)
                    SoftBreak();
                Escape(b);
                lineLength += 3;
                i++;
            }
            else if (b == '\n' || (b == '\r' && !last && data[i + 1] == '\n'))
            {
                lineLength = 0;
                // Whitespace at the end of a line would be lost in transit: escape it.
                if (output.Count > 0 && output[^1] is (byte)' ' or (byte)'\t')
                {
                    byte space = output[^1];
                    output.RemoveAt(output.Count - 1);
                    Escape(space);
                }
                if (crlf)
                    output.Add((byte)'\r');
                output.Add((byte)'\n');
                i += b == '\r' ? 2 : 1;
            }
            else
            {
                if (!last && data[i + 1] != '\n' && lineLength + 1 >= QpMaxLineSize)
                    SoftBreak();
                lineLength++;
                output.Add(b);
                i++;
            }
        }
        return Encoding.ASCII.GetString(output.ToArray());
    }

    /// <summary>quopri.decodestring(text) (binascii.a2b_qp with header=False).</summary>
    public static byte[] FromQuotedPrintable(string text)
    {
        byte[] input = Encoding.UTF8.GetBytes(text);
        var output = new List<byte>(input.Length);
        for (int i = 0; i < input.Length;)
        {
            if (input[i] != '=')
            {
                output.Add(input[i++]);
                continue;
            }
            i++;
            if (i >= input.Length)
                break;
            if (input[i] is (byte)'\n' or (byte)'\r')
            {
                // A soft line break: drop it up to and including the newline.
                while (i < input.Length && input[i] != '\n')
                    i++;
                if (i < input.Length)
                    i++;
            }
            else if (input[i] == '=')
            {
                output.Add((byte)'=');
                i++;
            }
            else if (i + 1 < input.Length && Uri.IsHexDigit((char)input[i]) && Uri.IsHexDigit((char)input[i + 1]))
            {
                output.Add((byte)((Uri.FromHex((char)input[i]) << 4) | Uri.FromHex((char)input[i + 1])));
                i += 2;
            }
            else
            {
                output.Add((byte)'=');
            }
        }
        return output.ToArray();
    }

    /// <summary>An integer as Python's int(text, 0) reads it: decimal, or 0x/0o/0b-prefixed, with an optional sign.</summary>
    public static bool TryParseInteger(string text, out BigInteger value)
    {
        value = BigInteger.Zero;
        string s = text.Trim().Replace("_", "", StringComparison.Ordinal);
        bool negative = s.StartsWith('-');
        if (negative || s.StartsWith('+'))
            s = s[1..];
        int radix = 10;
        if (s.Length > 2 && s[0] == '0' && char.ToLowerInvariant(s[1]) is 'x' or 'o' or 'b')
        {
            radix = char.ToLowerInvariant(s[1]) switch { 'x' => 16, 'o' => 8, _ => 2 };
            s = s[2..];
        }
        if (s.Length == 0)
            return false;
        foreach (char c in s)
        {
            int digit = Uri.IsHexDigit(c) ? Uri.FromHex(c) : -1;
            if (digit < 0 || digit >= radix)
                return false;
            value = value * radix + digit;
        }
        if (negative)
            value = -value;
        return true;
    }
}
