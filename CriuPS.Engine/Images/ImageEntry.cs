using Google.Protobuf;

namespace CriuPS.Engine.Images;

/// <summary>
/// One decoded entry of an image, in file order, with the raw bytes that followed it.
/// </summary>
/// <param name="Message">The protobuf message.</param>
/// <param name="Payload">
/// The raw bytes stored after the message, exactly as on disk (alignment padding included), or
/// null when entries of this kind carry none.
/// </param>
public sealed record ImageEntry(IMessage Message, byte[]? Payload = null);
