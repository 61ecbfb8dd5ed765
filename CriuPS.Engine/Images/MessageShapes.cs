using Google.Protobuf.Reflection;

namespace CriuPS.Engine.Images;

/// <summary>
/// What the image codec needs to know of each message of our .proto files, read from the FileDescriptorSet that the
/// build embeds (CriuPS.Engine.csproj, WriteMessageShapes): its proto2 required fields and the fields that hold other
/// messages, by field number. This is not the generated classes' own reflection (<c>Message.Descriptor</c>), which
/// reflects over all of them at once the first time one is asked, 60 ms of a fresh PowerShell's first checkpoint or
/// restore; reading the set takes 8 ms in a fresh process.
/// </summary>
internal static class MessageShapes
{
    private const string Resource = "CriuPS.Engine.Images.message-shapes.pb";

    private static readonly Lazy<Dictionary<string, MessageShape>> ByName = new(Load);

    // The largest number a required field may have: the table of required fields by number has that many entries at
    // most (CRIU's numbers reach 38).
    private const int MaxRequiredNumber = 1024;

    /// <summary>The shape of a message by its name in the .proto files, which is also its class's name.</summary>
    public static MessageShape Of(string name) =>
        ByName.Value.TryGetValue(name, out var shape) ? shape : throw new KeyNotFoundException($"{name} is no message of the image .proto files");

    /// <summary>Every message of the .proto files.</summary>
    public static IEnumerable<MessageShape> All => ByName.Value.Values;

    private static Dictionary<string, MessageShape> Load()
    {
        using var stream = typeof(MessageShapes).Assembly.GetManifestResourceStream(Resource)
            ?? throw new InvalidOperationException($"{Resource} is not embedded in {typeof(MessageShapes).Assembly.GetName().Name}");
        var set = FileDescriptorSet.Parser.ParseFrom(stream);
        // Our messages are not nested, and all are in one package: a field's type name is ".criu.Name".
        var messages = set.File.SelectMany(file => file.MessageType).ToList();
        var shapes = messages.ToDictionary(message => message.Name, message => new MessageShape(message.Name));
        foreach (var message in messages)
        {
            var shape = shapes[message.Name];
            shape.Required = [.. message.Field
                .Where(field => field.Label == FieldDescriptorProto.Types.Label.Required)
                .OrderBy(field => field.Number)
                .Select(field => new FieldShape(field.Number, field.Name, WireTypeOf(field.Type), null, false))];
            // RequiredFields marks the required fields seen in a 64-bit mask, found by field number in a table.
            if (shape.Required.Length > 64 || shape.Required.Any(field => field.Number > MaxRequiredNumber))
            {
                throw new InvalidOperationException($"{message.Name} has {shape.Required.Length} required fields up to number {shape.Required.LastOrDefault()?.Number}; the check handles 64 at most, numbered up to {MaxRequiredNumber}");
            }
            shape.RequiredByNumber = Enumerable.Repeat(-1, (shape.Required.LastOrDefault()?.Number ?? -1) + 1).ToArray();
            for (int i = 0; i < shape.Required.Length; i++)
            {
                shape.RequiredByNumber[shape.Required[i].Number] = i;
            }
            shape.Messages = [.. message.Field
                .Where(field => field.Type == FieldDescriptorProto.Types.Type.Message)
                .OrderBy(field => field.Number)
                .Select(field => new FieldShape(field.Number, field.Name, WireTypeOf(field.Type),
                    shapes[field.TypeName[(field.TypeName.LastIndexOf('.') + 1)..]], field.Label == FieldDescriptorProto.Types.Label.Repeated))];
        }
        return shapes;
    }

    // How a singular field of the type is written. A field on the wire in another way is an unknown field to parsers,
    // which leave the field unset.
    private static int WireTypeOf(FieldDescriptorProto.Types.Type type) => type switch
    {
        FieldDescriptorProto.Types.Type.Double or FieldDescriptorProto.Types.Type.Fixed64 or FieldDescriptorProto.Types.Type.Sfixed64 => 1,
        FieldDescriptorProto.Types.Type.Float or FieldDescriptorProto.Types.Type.Fixed32 or FieldDescriptorProto.Types.Type.Sfixed32 => 5,
        FieldDescriptorProto.Types.Type.String or FieldDescriptorProto.Types.Type.Bytes or FieldDescriptorProto.Types.Type.Message => 2,
        FieldDescriptorProto.Types.Type.Group => 3,
        _ => 0, // the varints: integers, bool, enum
    };
}

/// <summary>One message of the .proto files, as <see cref="MessageShapes"/> reads it.</summary>
internal sealed class MessageShape(string name)
{
    public string Name { get; } = name;

    /// <summary>The proto2 required fields, in field number order.</summary>
    public FieldShape[] Required { get; set; } = [];

    /// <summary>For each field number up to the last required one, its index in <see cref="Required"/>, or -1.</summary>
    public int[] RequiredByNumber { get; set; } = [];

    /// <summary>The fields holding a message (or repeated messages), in field number order.</summary>
    public FieldShape[] Messages { get; set; } = [];

    public override string ToString() => Name;
}

/// <summary>
/// A field of a <see cref="MessageShape"/>: <see cref="WireType"/> is how it is written (the low 3 bits of its tag),
/// <see cref="Message"/> the shape of what it holds, if a message.
/// </summary>
internal sealed record FieldShape(int Number, string Name, int WireType, MessageShape? Message, bool Repeated);
