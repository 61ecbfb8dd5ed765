using System.Runtime.InteropServices;

namespace CriuPS.Engine.Support;

/// <summary>Loads the NVIDIA driver library, if there is one, to look for its checkpoint entry points; unloads it again.</summary>
internal sealed class CudaCheckpointProbe : FeatureProbe
{
    private const string Library = "libcuda.so.1";

    private static readonly string[] EntryPoints =
        { "cuCheckpointProcessLock", "cuCheckpointProcessCheckpoint", "cuCheckpointProcessRestore", "cuCheckpointProcessUnlock" };

    public override string Name => "CudaCheckpoint";

    public override bool Essential => false;

    public override string Requirement => "an NVIDIA GPU driver whose libcuda.so.1 has the CUDA checkpoint API (cuCheckpointProcess*, driver 550 or later)";

    public override string Impact => "Processes that use CUDA cannot be checkpointed: their GPU memory and contexts cannot be saved.";

    public override (bool, string) Check()
    {
        if (!NativeLibrary.TryLoad(Library, out IntPtr handle))
        {
            return (false, $"{Library} cannot be loaded (no NVIDIA driver on this machine)");
        }
        try
        {
            var missing = EntryPoints.Where(name => !NativeLibrary.TryGetExport(handle, name, out _)).ToList();
            return missing.Count == 0
                ? (true, $"{Library} exports {string.Join(", ", EntryPoints)}")
                : (false, $"{Library} lacks {string.Join(", ", missing)} (a driver older than 550)");
        }
        finally
        {
            NativeLibrary.Free(handle);
        }
    }
}
