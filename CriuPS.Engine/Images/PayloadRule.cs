using Google.Protobuf;

namespace CriuPS.Engine.Images;

/// <summary>
/// How many raw bytes follow an entry in the file. CRIU stores bulk data (pipe contents, socket
/// queues, ghost file contents, SysV IPC data...) right after the entry that describes it, and
/// only the entry says how long it is.
/// </summary>
public sealed class PayloadRule
{
    private readonly Func<IMessage, long, ulong?> size;

    private PayloadRule(Func<IMessage, long, ulong?> size) => this.size = size;

    /// <summary>
    /// A payload of the length the entry gives, padded with unspecified bytes up to a multiple of
    /// <paramref name="alignment"/>. The padding belongs to the payload as read and written, so
    /// round trips stay byte-exact.
    /// </summary>
    public static PayloadRule Sized<T>(Func<T, ulong> length, int alignment = 1) where T : IMessage<T>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(alignment);
        return new((entry, _) => RoundUp(length((T)entry), (ulong)alignment));
    }

    /// <summary>A payload running to the end of the file where <paramref name="applies"/> says so, else none.</summary>
    public static PayloadRule RestOfFile<T>(Func<T, bool> applies) where T : IMessage<T> =>
        new((entry, bytesLeft) => applies((T)entry) ? (ulong)bytesLeft : null);

    /// <summary>
    /// The payload size on disk, padding included, or null when this entry has no payload.
    /// The caller checks it against the bytes left: it trusts the entry.
    /// </summary>
    internal ulong? SizeAfter(IMessage entry, long bytesLeft) => size(entry, bytesLeft);

    // A length too close to 2^64 to pad is left as is: it exceeds any file anyway.
    private static ulong RoundUp(ulong length, ulong alignment) =>
        length % alignment == 0 || length > ulong.MaxValue - alignment ? length : length + alignment - length % alignment;
}
