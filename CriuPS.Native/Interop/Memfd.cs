using Tmds.Linux;

namespace CriuPS.Native.Interop;

// Tmds.LibC has most of these as static int properties (not MFD_NOEXEC_SEAL, MFD_EXEC, F_SEAL_EXEC); these are the
// types memfd_create and the image's hugetlb_flag take (uint) and the seals' (int), so that flag arithmetic needs no
// casts. NativeConstantsTests checks every one Tmds.LibC also has against its value, so the two cannot drift apart.
/// <summary>memfd_create(2) and the file seals of fcntl(2) (F_ADD_SEALS, F_GET_SEALS).</summary>
public static unsafe class Memfd
{
    public const uint MFD_CLOEXEC = 0x1, MFD_ALLOW_SEALING = 0x2, MFD_HUGETLB = 0x4, MFD_NOEXEC_SEAL = 0x8, MFD_EXEC = 0x10;

    public const int F_SEAL_SEAL = 0x1, F_SEAL_SHRINK = 0x2, F_SEAL_GROW = 0x4, F_SEAL_WRITE = 0x8, F_SEAL_FUTURE_WRITE = 0x10, F_SEAL_EXEC = 0x20;

    /// <summary>A new memfd of this process (always close-on-exec here: the descriptor is the engine's own).</summary>
    public static FileDescriptor Create(string name, uint flags)
    {
        var bytes = FileDescriptor.NullTerminated(name);
        fixed (byte* p = bytes)
        {
            int fd = LibC.memfd_create(p, flags | MFD_CLOEXEC);
            if (fd < 0)
            {
                throw new NativeException("memfd_create", LibC.errno, name);
            }
            return new FileDescriptor(fd);
        }
    }

    public static int GetSeals(FileDescriptor memfd) => Fcntl.Call(memfd, LibC.F_GET_SEALS);

    public static void AddSeals(FileDescriptor memfd, int seals) => Fcntl.Call(memfd, LibC.F_ADD_SEALS, seals);
}
