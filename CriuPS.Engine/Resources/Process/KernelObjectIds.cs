namespace CriuPS.Engine.Resources.Process;

/// <summary>
/// Small integer ids for kernel objects that processes may share (namespaces by inode, mm/files/fs/sighand by a
/// representative process), as CRIU numbers them in ids-PID.img and the inventory.
/// </summary>
internal sealed class KernelObjectIds
{
    private readonly Dictionary<string, uint> ids = new(StringComparer.Ordinal);
    private uint next = 1;

    /// <summary>The id of the object named <paramref name="key"/> (e.g. "net:[4026531840]"), new if unseen.</summary>
    public uint For(string key)
    {
        if (!ids.TryGetValue(key, out var id))
        {
            id = next++;
            ids[key] = id;
        }
        return id;
    }
}
