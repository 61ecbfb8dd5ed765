using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using Google.Protobuf;

namespace CriuPS.Engine;

/// <summary>
/// Pays the one-time costs of a first checkpoint (JIT of the image code, of the code only large targets reach and of
/// the digests' hashing, the image codec's message classes and its required-field check, this CPU's
/// description for cpuinfo.img and the restore's check of it) before any process is frozen: started in the background
/// when the module loads and when criups-engine starts, and awaited at the start of a dump, so that none of it lands in the frozen window. A restore
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
        // The image codec's data, read once per process: the message shapes that the required fields' check reads
        // (from an embedded descriptor set), and the image types. In criups-engine, a fresh process per operation,
        // the shapes were read while a 64-thread tree stood still, at its first image write: 0.8 ms of its 20.
        RequiredFields.Warm();
        _ = ImageTypes.All.Count;
        if (!RuntimeFeature.IsDynamicCodeCompiled)
        {
            // criups-engine, compiled ahead of time: the rest is compilation, done at build time there.
            return;
        }
        Dump.ScaleWarmup.Run();
        // The image codec: every message class loaded, parsed from nothing and serialized. Not the generated classes'
        // reflection (Message.Descriptor), which only JSON, crit's views and a tree below the engine's PID namespace
        // use (TreePids.PrepareRenumbering builds it for that tree, unfrozen).
        WarmMessageClasses();
        // Dumps hash every byte they write, restores every byte they read.
        Images.Digests.BlockDigester.WarmUp();
    }

    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Run only where code is compiled at run time: never in criups-engine, the one trimmed build.")]
    [UnconditionalSuppressMessage("Trimming", "IL2072", Justification = "Run only where code is compiled at run time: never in criups-engine, the one trimmed build.")]
    private static void WarmMessageClasses()
    {
        var assembly = typeof(ImageTypes).Assembly;
        foreach (var shape in MessageShapes.All)
        {
            var type = assembly.GetType($"{typeof(InventoryEntry).Namespace}.{shape.Name}", throwOnError: true)!;
            var message = (IMessage)Activator.CreateInstance(type)!;
            message.MergeFrom((ReadOnlySpan<byte>)message.ToByteArray()); // as ImageReader parses
        }
    }
}
