using System.Buffers.Binary;
using System.Text;
using CriuPS.Native.Arch;

namespace CriuPS.Native.Interop;

/// <summary>
/// getdents64(2): the names in a directory, and nothing else. .NET's directory enumeration stats every symbolic link it
/// meets (to say whether it leads to a directory), which for /proc/PID/fd is a stat per descriptor of every process of
/// a tree, most of them while it is frozen.
/// </summary>
public static unsafe class Getdents64
{
    // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name (NUL-terminated).
    private const int RecordLengthOffset = 16;
    private const int NameOffset = 19;

    /// <summary>The names in an open directory ("." and ".." left out), in the kernel's order, from where its reading stands.</summary>
    public static List<string> Names(FileDescriptor directory)
    {
        var names = new List<string>();
        var buffer = new byte[32 << 10];
        fixed (byte* start = buffer)
        {
            while (true)
            {
                long filled = Syscall.Checked("getdents64", SystemCall.Getdents64, (ulong)directory.Value, (ulong)start, (ulong)buffer.Length);
                if (filled == 0)
                {
                    return names;
                }
                for (int at = 0; at < filled;)
                {
                    int length = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(at + RecordLengthOffset));
                    var name = buffer.AsSpan(at + NameOffset, length - NameOffset);
                    name = name[..name.IndexOf((byte)0)];
                    if (!name.SequenceEqual("."u8) && !name.SequenceEqual(".."u8))
                    {
                        names.Add(Encoding.UTF8.GetString(name));
                    }
                    at += length;
                }
            }
        }
    }
}
