using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;
using CriuPS.Engine.Images.Proto;
using Google.Protobuf;

namespace CriuPS.Engine.Images.Json;

/// <summary>
/// The "extra" of an entry: the raw bytes that follow it in the file, shown as crit's extra handlers show them
/// (lib/pycriu/images/images.py). Most are base64 lines; a TCP stream's queues are {"inq", "outq"}; a semaphore
/// set's values are a list of numbers; SysV shared memory and message texts lose their alignment padding, which
/// is written back as zeros.
/// </summary>
internal static class PayloadJson
{
    private const int ShmAlignment = sizeof(uint);
    private const int SemAlignment = sizeof(ulong);
    private const int MsgAlignment = sizeof(ulong);

    public static JsonNode ToJson(IMessage entry, byte[] payload) => entry switch
    {
        TcpStreamEntry tcp => new JsonObject
        {
            ["inq"] = CritText.ToBase64Lines(payload.AsSpan(0, (int)Math.Min(tcp.InqLen, (uint)payload.Length))),
            ["outq"] = CritText.ToBase64Lines(payload.AsSpan((int)Math.Min(tcp.InqLen, (uint)payload.Length))),
        },
        IpcSemEntry sem => new JsonArray(Enumerable.Range(0, (int)Math.Min(sem.Nsems, (uint)payload.Length / sizeof(ushort)))
            .Select(i => (JsonNode)JsonValue.Create(BinaryPrimitives.ReadUInt16LittleEndian(payload.AsSpan(i * sizeof(ushort)))))
            .ToArray()),
        IpcShmEntry shm => CritText.ToBase64Lines(payload.AsSpan(0, (int)Math.Min(shm.Size, (ulong)payload.Length))),
        IpcMsg msg => CritText.ToBase64Lines(payload.AsSpan(0, (int)Math.Min(msg.Msize, (uint)payload.Length))),
        _ => CritText.ToBase64Lines(payload),
    };

    /// <summary>The bytes to write after <paramref name="entry"/> from its extra, padding included.</summary>
    public static byte[] FromJson(IMessage entry, JsonNode? extra, string path) => entry switch
    {
        TcpStreamEntry => extra is JsonObject queues
            ? [.. Base64(queues["inq"], MessageJson.Join(path, "inq")), .. Base64(queues["outq"], MessageJson.Join(path, "outq"))]
            : throw new ImageJsonException(path, $"expected an object with inq and outq, found {MessageJson.Describe(extra)}"),
        IpcSemEntry => Padded(Semaphores(extra, path), SemAlignment),
        IpcShmEntry => Padded(Base64(extra, path), ShmAlignment),
        IpcMsg => Padded(Base64(extra, path), MsgAlignment),
        _ => Base64(extra, path),
    };

    /// <summary>The bytes of a base64 extra.</summary>
    public static byte[] Base64(JsonNode? node, string path)
    {
        if (node is not JsonValue value || value.GetValueKind() != JsonValueKind.String)
            throw new ImageJsonException(path, $"expected base64 text, found {MessageJson.Describe(node)}");
        try
        {
            return CritText.FromBase64(value.GetValue<string>());
        }
        catch (FormatException)
        {
            throw new ImageJsonException(path, "not valid base64");
        }
    }

    private static byte[] Semaphores(JsonNode? node, string path)
    {
        if (node is not JsonArray values)
            throw new ImageJsonException(path, $"expected a list of semaphore values, found {MessageJson.Describe(node)}");
        var bytes = new byte[values.Count * sizeof(ushort)];
        for (int i = 0; i < values.Count; i++)
        {
            if (values[i] is not JsonValue v || v.GetValueKind() != JsonValueKind.Number || !ushort.TryParse(v.ToJsonString(), out ushort semaphore))
                throw new ImageJsonException($"{path}[{i}]", $"expected a number from 0 to 65535, found {MessageJson.Describe(values[i])}");
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * sizeof(ushort)), semaphore);
        }
        return bytes;
    }

    private static byte[] Padded(byte[] data, int alignment)
    {
        int padding = (alignment - data.Length % alignment) % alignment;
        return padding == 0 ? data : [.. data, .. new byte[padding]];
    }
}
