namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// Turns a vDSO saved on another kernel build into a proxy of this kernel's: the saved bytes go back at their address
/// (where AT_SYSINFO_EHDR and pointers cached at start-up, glibc's among them, lead), and the entry of each exported
/// function is overwritten with an absolute jump to the function of the same name in this kernel's vDSO, which has
/// been moved elsewhere with its data pages. The saved code itself never runs: it would read this kernel's data
/// pages with another build's layout.
/// </summary>
internal sealed class VdsoProxy
{
    /// <summary>Bytes of the architecture's absolute jump (x86-64: 12, movabs $target, %rax; jmp *%rax).</summary>
    public static readonly ulong JumpLength = (ulong)IArchitecture.Current.AbsoluteJumpLength;

    private VdsoProxy(List<VdsoPatch> patches) => Patches = patches;

    /// <summary>What to write over the saved vDSO, by offset from its start: one jump per distinct entry point.</summary>
    public IReadOnlyList<VdsoPatch> Patches { get; }

    /// <summary>
    /// Plans the jumps from the saved vDSO's functions to this kernel's, whose vDSO starts at <paramref name="runtimeBase"/>.
    /// </summary>
    /// <exception cref="VdsoProxyException">A saved function has no counterpart here, or no room for a jump.</exception>
    public static VdsoProxy Plan(VdsoSymbols saved, VdsoSymbols runtime, ulong runtimeBase)
    {
        var patches = new List<VdsoPatch>();
        // Aliases (time and __vdso_time) share an entry: one jump each entry, and every name must agree on its target.
        foreach (var entry in saved.ByName.Values.GroupBy(s => s.Offset).OrderBy(g => g.Key))
        {
            var names = entry.Select(s => s.Name).OrderBy(n => n, StringComparer.Ordinal).ToList();
            var missing = names.Where(n => !runtime.ByName.ContainsKey(n)).ToList();
            if (missing.Count > 0)
            {
                throw new VdsoProxyException($"the saved vDSO exports {string.Join(", ", missing)}, which this kernel's vDSO lacks");
            }
            var targets = names.Select(n => runtime.ByName[n].Offset).Distinct().ToList();
            if (targets.Count > 1)
            {
                throw new VdsoProxyException($"{string.Join(" and ", names)} share an entry in the saved vDSO but not in this kernel's");
            }
            ulong size = entry.Max(s => s.Size);
            if (entry.Key + JumpLength > (ulong)saved.ImageLength)
            {
                throw new VdsoProxyException($"the saved vDSO's {names[0]} starts too close to its end for a jump");
            }
            if (size != 0 && size < JumpLength)
            {
                throw new VdsoProxyException($"the saved vDSO's {names[0]} is {size} bytes, too small for the {JumpLength}-byte jump to this kernel's");
            }
            patches.Add(new VdsoPatch(entry.Key, Jump(runtimeBase + targets[0]), names[0]));
        }
        for (int i = 1; i < patches.Count; i++)
        {
            if (patches[i].Offset - patches[i - 1].Offset < JumpLength)
            {
                throw new VdsoProxyException($"the saved vDSO's {patches[i - 1].Name} and {patches[i].Name} are too close for a jump each");
            }
        }
        return new VdsoProxy(patches);
    }

    /// <summary>The architecture's code of an absolute jump to <paramref name="target"/>.</summary>
    public static byte[] Jump(ulong target) => IArchitecture.Current.EncodeAbsoluteJump(target);
}

/// <summary>One jump written over a saved vDSO: at <paramref name="Offset"/> from its start, for function <paramref name="Name"/>.</summary>
internal sealed record VdsoPatch(ulong Offset, byte[] Code, string Name);

/// <summary>A saved vDSO that cannot be made a proxy of this kernel's; the message names the function.</summary>
internal sealed class VdsoProxyException(string message) : Exception(message);
