using Google.Protobuf;

namespace CriuPS.Engine.Images;

/// <summary>
/// Finds unset proto2 required fields. Google.Protobuf parses and serializes messages that lack them without
/// complaint, but CRIU (protobuf-c) refuses such entries, so the image codec checks. The check reads the message's
/// wire form against its <see cref="MessageShapes"/>: a proto2 field is on the wire exactly when it is set, and
/// sub-messages are found by their field numbers, so no reflection over the generated classes is needed.
/// </summary>
internal static class RequiredFields
{
    // A wire type: the low 3 bits of a tag.
    private const int Varint = 0, Fixed64 = 1, LengthDelimited = 2, StartGroup = 3, EndGroup = 4, Fixed32 = 5;

    /// <summary>Dotted paths of the required fields missing in a message and its sub-messages.</summary>
    public static IReadOnlyList<string> MissingIn(IMessage message) => MissingIn(message.GetType().Name, message.ToByteArray());

    /// <summary>The same, for a message of the named type in its wire form.</summary>
    public static IReadOnlyList<string> MissingIn(string messageName, ReadOnlySpan<byte> wire)
    {
        var shape = MessageShapes.Of(messageName);
        // Every entry written or read is checked: the check itself builds no strings (an mm entry of 10,000 areas
        // took 40 ms when it did); the paths are made only for an entry that lacks something.
        if (Check(shape, wire, "", null))
        {
            return Array.Empty<string>();
        }
        var missing = new List<string>();
        Check(shape, wire, "", missing);
        return missing;
    }

    /// <summary>Reads the shapes and runs the check once, so that a first checkpoint does neither while frozen.</summary>
    internal static void Warm()
    {
        foreach (var shape in MessageShapes.All)
        {
            Check(shape, [], "", null);
        }
    }

    // Fields are judged in field number order, as crit lists them; without a list to fill, the check stops at the
    // first field missing. Each field holding messages has the wire read again for its occurrences: a message holds
    // few such fields, and what is read is in the cache already.
    private static bool Check(MessageShape shape, ReadOnlySpan<byte> wire, string prefix, List<string>? missing)
    {
        ulong seen = RequiredSeen(shape, wire);
        bool complete = true;
        int next = 0; // the next required field to judge
        foreach (var field in shape.Messages)
        {
            for (; next < shape.Required.Length && shape.Required[next].Number < field.Number; next++)
            {
                complete &= Present(shape, seen, next, prefix, missing);
            }
            if (complete || missing is not null)
            {
                complete &= field.Repeated ? CheckEach(field, wire, prefix, missing) : CheckMerged(field, wire, prefix, missing);
            }
            if (!complete && missing is null)
            {
                return false;
            }
        }
        for (; next < shape.Required.Length; next++)
        {
            complete &= Present(shape, seen, next, prefix, missing);
        }
        return complete;
    }

    // Bit i: Required[i] is on the wire (at most 64 required fields; task.proto's largest message has 38).
    private static ulong RequiredSeen(MessageShape shape, ReadOnlySpan<byte> wire)
    {
        ulong seen = 0;
        int offset = 0;
        var byNumber = shape.RequiredByNumber;
        while (NextField(wire, ref offset, out int number, out int wireType, out _))
        {
            // Looked up by number: comparing each field with every required one was half of the check's time over
            // ten checkpoints and restores of 10,000 areas (perf: 96 samples of its 204, 58 by number).
            if ((uint)number < (uint)byNumber.Length && byNumber[number] is int i and >= 0 && shape.Required[i].WireType == wireType)
            {
                seen |= 1UL << i;
            }
        }
        return seen;
    }

    // Whether the index-th required field was seen; if not, says so in the list there is.
    private static bool Present(MessageShape shape, ulong seen, int index, string prefix, List<string>? missing)
    {
        if ((seen & (1UL << index)) != 0)
        {
            return true;
        }
        missing?.Add(prefix + shape.Required[index].Name);
        return false;
    }

    // A repeated message field: each occurrence is one message, named by its index.
    private static bool CheckEach(FieldShape field, ReadOnlySpan<byte> wire, string prefix, List<string>? missing)
    {
        bool complete = true;
        int offset = 0, index = 0;
        while (NextField(wire, ref offset, out int number, out int wireType, out var value))
        {
            if (number == field.Number && wireType == LengthDelimited)
            {
                complete &= Check(field.Message!, value, missing is null ? "" : $"{prefix}{field.Name}[{index}].", missing);
                index++;
                if (!complete && missing is null)
                {
                    return false;
                }
            }
        }
        return complete;
    }

    // A message field written more than once is merged by parsers, as if its occurrences were one: their wire forms
    // joined, which is what is checked then.
    private static bool CheckMerged(FieldShape field, ReadOnlySpan<byte> wire, string prefix, List<string>? missing)
    {
        scoped ReadOnlySpan<byte> first = default;
        byte[]? joined = null;
        int offset = 0, count = 0;
        while (NextField(wire, ref offset, out int number, out int wireType, out var value))
        {
            if (number == field.Number && wireType == LengthDelimited)
            {
                if (++count == 1)
                {
                    first = value;
                }
                else
                {
                    joined = [.. joined is null ? first : joined, .. value];
                }
            }
        }
        return count == 0 || Check(field.Message!, joined is null ? first : joined, missing is null ? "" : $"{prefix}{field.Name}.", missing);
    }

    // The next field on the wire from offset: its number, how it is written, and its bytes if length-delimited (a
    // message's, or a string's or packed values'); false at the end. A field of a message written otherwise than as
    // its type is is an unknown field to parsers, which leave the field unset: callers compare the wire type too.
    private static bool NextField(ReadOnlySpan<byte> wire, ref int offset, out int number, out int wireType, out ReadOnlySpan<byte> value)
    {
        value = default;
        if (offset >= wire.Length)
        {
            number = 0;
            wireType = 0;
            return false;
        }
        ulong tag = ReadVarint(wire, ref offset);
        number = (int)(tag >> 3);
        wireType = (int)(tag & 7);
        if (wireType == LengthDelimited)
        {
            int length = checked((int)ReadVarint(wire, ref offset));
            value = wire.Slice(offset, length);
            offset += length;
        }
        else
        {
            Skip(wire, ref offset, tag);
        }
        return true;
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> wire, ref int offset)
    {
        // Most are one byte: every tag of our messages, and most flags, sizes and counts.
        if (wire[offset] < 0x80)
        {
            return wire[offset++];
        }
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = wire[offset++];
            value |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }
        throw new InvalidDataException("a varint longer than 10 bytes");
    }

    // The messages checked were parsed or written by Google.Protobuf: their wire form is valid. A group (no message
    // of ours has one, but a newer CRIU's unknown field could) is skipped up to its end.
    private static void Skip(ReadOnlySpan<byte> wire, ref int offset, ulong tag)
    {
        switch ((int)(tag & 7))
        {
            case Varint:
                ReadVarint(wire, ref offset);
                break;
            case Fixed64:
                offset += sizeof(ulong);
                break;
            case Fixed32:
                offset += sizeof(uint);
                break;
            case LengthDelimited:
                offset += checked((int)ReadVarint(wire, ref offset));
                break;
            case StartGroup:
                while (true)
                {
                    ulong inner = ReadVarint(wire, ref offset);
                    if ((int)(inner & 7) == EndGroup)
                    {
                        break;
                    }
                    Skip(wire, ref offset, inner);
                }
                break;
            default:
                throw new InvalidDataException($"wire type {tag & 7}");
        }
    }
}
