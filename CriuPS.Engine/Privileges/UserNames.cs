using System.Globalization;

namespace CriuPS.Engine.Privileges;

/// <summary>User names for messages, from /etc/passwd (a name is a courtesy: a uid without one is shown as its number).</summary>
internal static class UserNames
{
    public static string? Of(uint uid)
    {
        try
        {
            foreach (var line in File.ReadLines("/etc/passwd"))
            {
                var fields = line.Split(':');
                if (fields.Length > 2 && uint.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out uint id) && id == uid)
                {
                    return fields[0];
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // no names then
        }
        return null;
    }
}
