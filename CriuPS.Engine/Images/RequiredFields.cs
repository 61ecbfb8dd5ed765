using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace CriuPS.Engine.Images;

/// <summary>
/// Finds unset proto2 required fields. Google.Protobuf parses and serializes messages that lack
/// them without complaint, but CRIU (protobuf-c) refuses such entries, so the image codec checks.
/// </summary>
internal static class RequiredFields
{
    /// <summary>Dotted paths of the required fields missing in a message and its sub-messages.</summary>
    public static IReadOnlyList<string> MissingIn(IMessage message)
    {
        var missing = new List<string>();
        Collect(message, "", missing);
        return missing;
    }

    private static void Collect(IMessage message, string prefix, List<string> missing)
    {
        foreach (FieldDescriptor field in message.Descriptor.Fields.InFieldNumberOrder())
        {
            string path = prefix + field.Name;
            if (field.IsRequired && !field.Accessor.HasValue(message))
            {
                missing.Add(path);
                continue;
            }
            if (field.FieldType != FieldType.Message)
                continue;
            if (field.IsRepeated)
            {
                var items = (System.Collections.IList)field.Accessor.GetValue(message);
                for (int i = 0; i < items.Count; i++)
                    Collect((IMessage)items[i]!, $"{path}[{i}].", missing);
            }
            else if (field.Accessor.HasValue(message))
            {
                Collect((IMessage)field.Accessor.GetValue(message), path + ".", missing);
            }
        }
    }
}
