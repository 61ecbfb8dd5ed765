namespace CriuPS.Engine.Images;

/// <summary>What fills the {0} placeholder in an image's file name.</summary>
public enum ImageIdKind
{
    /// <summary>The name has no placeholder (files.img, inventory.img).</summary>
    None,

    /// <summary>A decimal number: a pid, a namespace id, a device number...</summary>
    Decimal,

    /// <summary>A hexadecimal number: ghost-file and tcp-stream ids.</summary>
    Hex,

    /// <summary>A word: "dump" or "restore" in stats-dump/stats-restore.</summary>
    Word,
}
