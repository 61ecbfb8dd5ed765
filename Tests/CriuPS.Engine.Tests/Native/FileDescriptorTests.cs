using System.Runtime.CompilerServices;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Tests.Native;

/// <summary>An owned descriptor cannot leak: one that nobody disposed is closed when it is collected.</summary>
public class FileDescriptorTests
{
    [Fact]
    public void ADescriptorNobodyDisposedIsClosedWhenCollected()
    {
        var file = Path.Combine(Path.GetTempPath(), $"criups-fd-{Guid.NewGuid():N}");
        File.WriteAllText(file, "x");
        try
        {
            int number = OpenAndForget(file);
            Assert.Equal(file, Target(number));
            for (int i = 0; i < 10 && Target(number) == file; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
            Assert.NotEqual(file, Target(number));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void AReleasedDescriptorStaysOpenForItsNewOwner()
    {
        var owned = FileDescriptor.Open("/dev/null", O.RDONLY);
        int number = owned.Release();
        Assert.Equal(-1, owned.Value);
        owned.Dispose();
        Assert.Equal("/dev/null", Target(number));
        Tmds.Linux.LibC.close(number);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int OpenAndForget(string path) => FileDescriptor.Open(path, O.RDONLY).Value;

    private static string? Target(int number)
    {
        try
        {
            return File.ResolveLinkTarget($"/proc/self/fd/{number}", returnFinalTarget: false)?.FullName;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
