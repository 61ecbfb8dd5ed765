using CriuPS.Engine.Images.Json;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;

namespace CriuPS.Engine.Model.Views;

/// <summary>How crit's explorers name a file of files.img (get_file_str in crit/crit/__main__.py).</summary>
internal sealed class FileNames(ImageSet images)
{
    /// <summary>The name CRIU gives a descriptor type: REG, PIPE, UNIXSK...</summary>
    public static string TypeName(FdTypes type) =>
        FdinfoEntry.Descriptor.FindFieldByName("type").EnumType.FindValueByNumber((int)type)?.Name ?? ((int)type).ToString(System.Globalization.CultureInfo.InvariantCulture);

    public string Of(FdTypes type, uint id)
    {
        images.Files.TryGetValue(id, out FileEntry? file);
        return type switch
        {
            FdTypes.Reg => file?.Reg?.Name ?? "unknown path",
            FdTypes.Pipe => file?.Pipe is { } pipe ? $"pipe[{pipe.PipeId}]" : "pipe[?]",
            FdTypes.Unixsk => file?.Usk is { } unix
                ? $"unix[{unix.Ino} ({unix.Peer}){(unix.Name.IsEmpty ? "" : " " + CritText.ToQuotedPrintable(unix.Name.Span))}]"
                : "unix[?]",
            _ => $"{TypeName(type)}.{id}",
        };
    }
}
