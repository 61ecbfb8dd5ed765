using System.Reflection;
using CriuPS.Native.Interop;
using Tmds.Linux;

namespace CriuPS.Engine.Tests.Native;

/// <summary>
/// The interop keeps some constants of its own where Tmds.LibC's static properties cannot serve (`const` expressions,
/// case patterns, register-sized values): each must have the value Tmds.LibC gives the same name on this machine, so
/// that a copy can never drift from the C library's.
/// </summary>
public class NativeConstantsTests
{
    // Our class, the prefix its names take in C (O.CLOEXEC is O_CLOEXEC), and how many names Tmds.LibC must share
    // with it at least (so that a renaming that makes the lookup miss everything fails here rather than passes).
    public static TheoryData<Type, string, int> Classes => new()
    {
        { typeof(O), "O_", 15 },
        { typeof(Mman), "", 25 },
        { typeof(Fcntl), "", 12 },
        { typeof(Memfd), "", 6 },
        { typeof(Errno), "", 25 },
        { typeof(Signals), "", 20 },
    };

    // Where ours is the kernel's value on purpose and the C library's differs.
    private static readonly Dictionary<string, string> KernelsOwn = new()
    {
        // /proc/PID/fdinfo shows the kernel's 0x8000 on every file a 64-bit process opens; glibc defines it as 0 there.
        ["O.LARGEFILE"] = "the kernel's flag",
    };

    [Theory]
    [MemberData(nameof(Classes))]
    public void EveryConstantHasTmdsLibCsValue(Type ours, string prefix, int atLeast)
    {
        var compared = new List<string>();
        foreach (var field in ours.GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral))
        {
            var theirs = typeof(LibC).GetProperty(prefix + field.Name, BindingFlags.Public | BindingFlags.Static);
            if (theirs is null || KernelsOwn.ContainsKey($"{ours.Name}.{field.Name}"))
            {
                continue; // one Tmds.LibC does not have (e.g. MAP_DROPPABLE, Linux 6.11), or the kernel's own
            }
            long expected = Convert.ToInt64(theirs.GetValue(null));
            long actual = unchecked(field.GetRawConstantValue() is ulong u ? (long)u : Convert.ToInt64(field.GetRawConstantValue()));
            Assert.True(expected == actual, $"{ours.Name}.{field.Name} is {actual}, Tmds.LibC's {prefix}{field.Name} is {expected}");
            compared.Add(field.Name);
        }
        Assert.True(compared.Count >= atLeast, $"only {compared.Count} of {ours.Name}'s constants are Tmds.LibC's too: {string.Join(", ", compared)}");
    }
}
