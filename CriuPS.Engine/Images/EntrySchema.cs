using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace CriuPS.Engine.Images;

/// <summary>
/// One kind of entry in an image file: its protobuf message type, the raw payload that follows it
/// (if any), and the entries nested after it (ipcns-msg: each queue entry is followed by its
/// messages, each with their text).
/// </summary>
public sealed class EntrySchema
{
    private readonly Func<IMessage> create;
    private readonly Func<IMessage, ulong>? childCount;

    private EntrySchema(MessageDescriptor descriptor, Func<IMessage> create, PayloadRule? payload,
        EntrySchema? children, Func<IMessage, ulong>? childCount)
    {
        Descriptor = descriptor;
        this.create = create;
        Payload = payload;
        Children = children;
        this.childCount = childCount;
    }

    public MessageDescriptor Descriptor { get; }

    public MessageParser Parser => Descriptor.Parser;

    /// <summary>The raw bytes that follow each entry, or null when none do.</summary>
    public PayloadRule? Payload { get; }

    /// <summary>The schema of the entries that follow each entry of this one, or null.</summary>
    public EntrySchema? Children { get; }

    public static EntrySchema Of<T>() where T : IMessage<T>, new() =>
        new(new T().Descriptor, () => new T(), null, null, null);

    public EntrySchema WithPayload(PayloadRule payload) =>
        new(Descriptor, create, payload, Children, childCount);

    public EntrySchema WithChildren<T>(EntrySchema children, Func<T, ulong> count) where T : IMessage<T> =>
        new(Descriptor, create, Payload, children, entry => count((T)entry));

    /// <summary>
    /// An empty message to merge into. Google.Protobuf does not enforce proto2 required fields
    /// when parsing, so callers check <c>IsInitialized</c> themselves.
    /// </summary>
    internal IMessage CreateMessage() => create();

    internal ulong ChildCountOf(IMessage entry) => childCount?.Invoke(entry) ?? 0;

    internal IEnumerable<MessageDescriptor> AllDescriptors()
    {
        yield return Descriptor;
        if (Children is not null)
            foreach (MessageDescriptor child in Children.AllDescriptors())
                yield return child;
    }
}
