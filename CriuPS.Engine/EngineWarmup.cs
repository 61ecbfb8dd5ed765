using CriuPS.Engine.Images;
using Google.Protobuf.Reflection;

namespace CriuPS.Engine;

/// <summary>
/// Pays the one-time costs of a first checkpoint (JIT of the image code, of the code only large targets reach and of
/// the digests' hashing, Google.Protobuf building its reflection accessors for the required-field checks, this CPU's
/// description for cpuinfo.img and the restore's check of it) before any process is frozen: started in the background
/// when the module loads, and awaited at the start of a dump, so that none of it lands in the frozen window. A restore
/// does not wait for it (nothing of its target runs before the release); what the warm-up has done by then it finds done.
/// </summary>
public static class EngineWarmup
{
    private static readonly Lazy<Task> Warm = new(() => Task.Run(Run), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Starts warming up if nobody has yet.</summary>
    public static void Start() => _ = Warm.Value;

    /// <summary>Waits for the warm-up (starting it if needed).</summary>
    public static void Wait() => Warm.Value.GetAwaiter().GetResult();

    private static void Run()
    {
        Resources.Cpu.CpuFit.Warm();
        Dump.ScaleWarmup.Run();
        var seen = new HashSet<MessageDescriptor>();
        foreach (var type in ImageTypes.All)
        {
            foreach (var schema in new[] { type.Head, type.Entry }.OfType<EntrySchema>())
            {
                Touch(schema.Descriptor, seen);
            }
        }
        // Dumps hash every byte they write, restores every byte they read.
        Images.Digests.BlockDigester.WarmUp();
    }

    // A default instance of every message type, checked and serialized: builds the accessors the writer uses.
    private static void Touch(MessageDescriptor descriptor, HashSet<MessageDescriptor> seen)
    {
        if (!seen.Add(descriptor))
        {
            return;
        }
        var message = descriptor.Parser.ParseFrom(Array.Empty<byte>());
        RequiredFields.MissingIn(message);
        foreach (var field in descriptor.Fields.InFieldNumberOrder())
        {
            _ = field.Accessor;
            if (field.FieldType == FieldType.Message)
            {
                Touch(field.MessageType, seen);
            }
        }
    }
}
