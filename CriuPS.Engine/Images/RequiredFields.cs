using System.Collections.Concurrent;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace CriuPS.Engine.Images;

/// <summary>
/// Finds unset proto2 required fields. Google.Protobuf parses and serializes messages that lack
/// them without complaint, but CRIU (protobuf-c) refuses such entries, so the image codec checks.
/// </summary>
internal static class RequiredFields
{
    // Per message type, the fields to look at: the required ones, and those holding sub-messages.
    private static readonly ConcurrentDictionary<MessageDescriptor, (FieldDescriptor[] Required, FieldDescriptor[] Messages)> Plans = new();

    /// <summary>Dotted paths of the required fields missing in a message and its sub-messages.</summary>
    public static IReadOnlyList<string> MissingIn(IMessage message)
    {
        // Every entry written is checked: the check itself builds no strings (an mm entry of 10,000 areas took
        // 40 ms when it did); the paths are made only for an entry that lacks something.
        if (IsComplete(message))
        {
            return Array.Empty<string>();
        }
        var missing = new List<string>();
        Collect(message, "", missing);
        return missing;
    }

    private static bool IsComplete(IMessage message)
    {
        var (required, messages) = Plans.GetOrAdd(message.Descriptor, static descriptor => (
            descriptor.Fields.InFieldNumberOrder().Where(f => f.IsRequired).ToArray(),
            descriptor.Fields.InFieldNumberOrder().Where(f => f.FieldType == FieldType.Message).ToArray()));
        foreach (var field in required)
        {
            if (!field.Accessor.HasValue(message))
            {
                return false;
            }
        }
        foreach (var field in messages)
        {
            if (field.IsRepeated)
            {
                var items = (System.Collections.IList)field.Accessor.GetValue(message);
                for (int i = 0; i < items.Count; i++)
                {
                    if (!IsComplete((IMessage)items[i]!))
                    {
                        return false;
                    }
                }
            }
            else if (field.Accessor.HasValue(message) && !IsComplete((IMessage)field.Accessor.GetValue(message)))
            {
                return false;
            }
        }
        return true;
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
