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
    private MessageDescriptor? descriptor;

    private EntrySchema(Type messageType, Func<IMessage> create, PayloadRule? payload,
        EntrySchema? children, Func<IMessage, ulong>? childCount)
    {
        MessageType = messageType;
        Name = messageType.Name;
        this.create = create;
        Payload = payload;
        Children = children;
        this.childCount = childCount;
    }

    /// <summary>The class of the entries, named as their message in the .proto files.</summary>
    public Type MessageType { get; }

    /// <summary>The entries' message name ("CoreEntry"), for messages and <see cref="MessageShapes"/>.</summary>
    public string Name { get; }

    /// <summary>
    /// The message's reflection, for what converts entries by their fields (JSON, crit's views). The image codec
    /// does without it: the generated classes build it for all messages at once, which a checkpoint need not wait for.
    /// </summary>
    public MessageDescriptor Descriptor => descriptor ??= create().Descriptor;

    /// <summary>The raw bytes that follow each entry, or null when none do.</summary>
    public PayloadRule? Payload { get; }

    /// <summary>The schema of the entries that follow each entry of this one, or null.</summary>
    public EntrySchema? Children { get; }

    public static EntrySchema Of<T>() where T : IMessage<T>, new() =>
        new(typeof(T), () => new T(), null, null, null);

    public EntrySchema WithPayload(PayloadRule payload) =>
        new(MessageType, create, payload, Children, childCount);

    public EntrySchema WithChildren<T>(EntrySchema children, Func<T, ulong> count) where T : IMessage<T> =>
        new(MessageType, create, Payload, children, entry => count((T)entry));

    /// <summary>
    /// An empty message to merge into. Google.Protobuf does not enforce proto2 required fields
    /// when parsing, so callers check <c>IsInitialized</c> themselves.
    /// </summary>
    internal IMessage CreateMessage() => create();

    internal ulong ChildCountOf(IMessage entry) => childCount?.Invoke(entry) ?? 0;

    internal IEnumerable<Type> AllMessageTypes()
    {
        yield return MessageType;
        if (Children is not null)
            foreach (Type child in Children.AllMessageTypes())
                yield return child;
    }
}
