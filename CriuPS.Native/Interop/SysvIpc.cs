using System.Buffers.Binary;

namespace CriuPS.Native.Interop;

/// <summary>
/// System V shared memory, semaphores and message queues (shmget/shmctl/shmat, semget/semctl, msgget/msgctl/msgsnd/
/// msgrcv) in the IPC namespace of the calling thread, through the raw system calls: the structures are x86-64's
/// (struct ipc64_perm, shmid64_ds, semid64_ds, msqid64_ds), read at their offsets.
/// </summary>
public static unsafe class SysvIpc
{
    public const int IpcPrivate = 0;
    public const int IpcCreat = 0x200, IpcExcl = 0x400, IpcNowait = 0x800;
    public const int ShmDest = 0x200, ShmLocked = 0x400; // in a segment's mode
    public const int ShmRdonly = 0x1000, ShmExec = 0x8000;

    /// <summary>shmget's flag for a segment of huge pages (with the size bits of <see cref="Memory.HugePages.SizeFlag"/>).</summary>
    public const uint ShmHugetlb = 0x800;
    /// <summary>The permission bits IPC_SET changes, and creation takes.</summary>
    public const uint PermissionBits = 0x1ff;

    private const int IpcRmid = 0, IpcSet = 1, IpcStat = 2;
    private const int MsgCopy = 0x4000; // without MSG_NOERROR: a longer message is an error (E2BIG), never cut
    private const int SemGetall = 13, SemSetall = 17;
    private const int BufferSize = 128; // the largest of the *id64_ds structures is 120 bytes

    // Offsets in struct ipc64_perm, at the start of every *id64_ds.
    private const int KeyAt = 0, UidAt = 4, GidAt = 8, CuidAt = 12, CgidAt = 16, ModeAt = 20;
    // shmid64_ds: shm_segsz, shm_nattch; semid64_ds: sem_nsems; msqid64_ds: msg_qnum, msg_qbytes.
    private const int ShmSizeAt = 48, ShmAttachedAt = 88, SemCountAt = 80, MsgCountAt = 80, MsgQueueBytesAt = 88;

    /// <summary>How a message names an object: "shared memory segment 32769 (key 0x1234abcd)".</summary>
    public static string Describe(SysvKind kind, int id, int key) => $"{Name(kind)} {id} (key 0x{key:x8})";

    public static string Name(SysvKind kind) => kind switch
    {
        SysvKind.SharedMemory => "System V shared memory segment",
        SysvKind.Semaphores => "System V semaphore set",
        _ => "System V message queue",
    };

    /// <summary>Every object of the kind in the calling thread's IPC namespace, in index order (*_INFO, then *_STAT_ANY per index).</summary>
    public static List<SysvObject> List(SysvKind kind)
    {
        var (number, info, statAny) = kind switch
        {
            SysvKind.SharedMemory => (SystemCall.Shmctl, 14, 15),
            SysvKind.Semaphores => (SystemCall.Semctl, 19, 20),
            _ => (SystemCall.Msgctl, 12, 13),
        };
        byte* buffer = stackalloc byte[BufferSize];
        long highest = Control($"{Name(kind)} information", kind, number, 0, info, buffer);
        var found = new List<SysvObject>();
        for (int index = 0; index <= highest; index++)
        {
            long id = Control(kind, number, index, statAny, buffer);
            if (id == -Errno.EINVAL || id == -Errno.EIDRM)
            {
                continue; // a free index
            }
            found.Add(Decode(kind, ThrowIfFailed($"{Name(kind)} at index {index}: status", id), buffer));
        }
        return found;
    }

    /// <summary>The object with this id, or null when there is none.</summary>
    public static SysvObject? Stat(SysvKind kind, int id)
    {
        byte* buffer = stackalloc byte[BufferSize];
        long result = Control(kind, NumberOf(kind), id, IpcStat, buffer);
        if (result == -Errno.EINVAL || result == -Errno.EIDRM)
        {
            return null;
        }
        ThrowIfFailed($"{Name(kind)} {id}: status", result);
        return Decode(kind, id, buffer);
    }

    /// <summary>Creates an object (shmget with a size, semget with a count, msgget) with the permission bits of <paramref name="mode"/>, failing when the key exists.</summary>
    /// <remarks><paramref name="hugetlbFlags"/>: SHM_HUGETLB and its size bits for a segment of huge pages, or 0.</remarks>
    public static int Create(SysvKind kind, int key, ulong sizeOrCount, uint mode, uint hugetlbFlags = 0)
    {
        ulong flags = (mode & PermissionBits) | IpcCreat | IpcExcl | hugetlbFlags;
        long id = kind switch
        {
            SysvKind.SharedMemory => Syscall.Raw(SystemCall.Shmget, (ulong)(uint)key, sizeOrCount, flags),
            SysvKind.Semaphores => Syscall.Raw(SystemCall.Semget, (ulong)(uint)key, sizeOrCount, flags),
            _ => Syscall.Raw(SystemCall.Msgget, (ulong)(uint)key, flags),
        };
        return (int)ThrowIfFailed($"creating a {Name(kind)} with key 0x{key:x8}", id);
    }

    /// <summary>Gives the object its owner, group and permission bits (IPC_SET), and a queue its byte limit when it differs.</summary>
    public static void SetOwnership(SysvKind kind, int id, uint uid, uint gid, uint mode, ulong? queueBytes = null)
    {
        byte* buffer = stackalloc byte[BufferSize];
        var number = NumberOf(kind);
        ThrowIfFailed($"{Name(kind)} {id}: status", Control(kind, number, id, IpcStat, buffer));
        var span = new Span<byte>(buffer, BufferSize);
        BinaryPrimitives.WriteUInt32LittleEndian(span[UidAt..], uid);
        BinaryPrimitives.WriteUInt32LittleEndian(span[GidAt..], gid);
        BinaryPrimitives.WriteUInt32LittleEndian(span[ModeAt..], mode & PermissionBits);
        if (queueBytes is { } bytes)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(span[MsgQueueBytesAt..], bytes);
        }
        ThrowIfFailed($"{Name(kind)} {id}: IPC_SET of owner {uid}, group {gid}, mode {Convert.ToString(mode & PermissionBits, 8)}", Control(kind, number, id, IpcSet, buffer));
    }

    /// <summary>Removes the object (IPC_RMID); a segment still attached is only marked, and goes with its last detach.</summary>
    public static void Remove(SysvKind kind, int id) =>
        ThrowIfFailed($"{Name(kind)} {id}: IPC_RMID", Control(kind, NumberOf(kind), id, IpcRmid, null));

    /// <summary>Attaches the segment anywhere in the engine (shmat); returns the address.</summary>
    public static ulong Attach(int id, bool readOnly) =>
        (ulong)ThrowIfFailed($"shmat of System V shared memory segment {id}", Syscall.Raw(SystemCall.Shmat, (ulong)id, 0, readOnly ? (ulong)ShmRdonly : 0));

    public static void Detach(ulong address) => ThrowIfFailed("shmdt", Syscall.Raw(SystemCall.Shmdt, address));

    /// <summary>The values of a semaphore set (GETALL).</summary>
    public static ushort[] Values(int id, int count)
    {
        var values = new ushort[count];
        fixed (ushort* array = values)
        {
            ThrowIfFailed($"System V semaphore set {id}: GETALL", Syscall.Raw(SystemCall.Semctl, (ulong)id, 0, SemGetall, (ulong)array));
        }
        return values;
    }

    /// <summary>Sets every value of a semaphore set (SETALL).</summary>
    public static void SetValues(int id, ushort[] values)
    {
        fixed (ushort* array = values)
        {
            ThrowIfFailed($"System V semaphore set {id}: SETALL", Syscall.Raw(SystemCall.Semctl, (ulong)id, 0, SemSetall, (ulong)array));
        }
    }

    /// <summary>
    /// A copy of the message at <paramref name="index"/> of the queue, which stays queued (msgrcv with MSG_COPY, which
    /// CONFIG_CHECKPOINT_RESTORE provides): its type and text.
    /// </summary>
    public static (long Type, byte[] Text) CopyMessage(int id, int index, int maxSize)
    {
        var buffer = new byte[sizeof(long) + maxSize];
        fixed (byte* message = buffer)
        {
            long size = ThrowIfFailed($"System V message queue {id}: copy of message {index} (msgrcv with MSG_COPY)",
                Syscall.Raw(SystemCall.Msgrcv, (ulong)id, (ulong)message, (ulong)maxSize, (ulong)index, IpcNowait | MsgCopy));
            return (BinaryPrimitives.ReadInt64LittleEndian(buffer), buffer.AsSpan(sizeof(long), (int)size).ToArray());
        }
    }

    /// <summary>Queues a message without waiting (a full queue is an error, not a hang).</summary>
    public static void Send(int id, long type, ReadOnlySpan<byte> text)
    {
        var buffer = new byte[sizeof(long) + text.Length];
        BinaryPrimitives.WriteInt64LittleEndian(buffer, type);
        text.CopyTo(buffer.AsSpan(sizeof(long)));
        fixed (byte* message = buffer)
        {
            ThrowIfFailed($"System V message queue {id}: msgsnd of a message of type {type}, {text.Length} bytes",
                Syscall.Raw(SystemCall.Msgsnd, (ulong)id, (ulong)message, (ulong)text.Length, IpcNowait));
        }
    }

    private static SystemCall NumberOf(SysvKind kind) => kind switch
    {
        SysvKind.SharedMemory => SystemCall.Shmctl,
        SysvKind.Semaphores => SystemCall.Semctl,
        _ => SystemCall.Msgctl,
    };

    // semctl takes the semaphore number before the command, and the buffer as its union argument.
    private static long Control(SysvKind kind, SystemCall number, int id, int command, byte* buffer) =>
        kind == SysvKind.Semaphores
            ? Syscall.Raw(number, (ulong)id, 0, (ulong)command, (ulong)buffer)
            : Syscall.Raw(number, (ulong)id, (ulong)command, (ulong)buffer);

    private static long Control(string what, SysvKind kind, SystemCall number, int id, int command, byte* buffer) =>
        ThrowIfFailed(what, Control(kind, number, id, command, buffer));

    private static long ThrowIfFailed(string what, long result) =>
        result < 0 && result > -4096 ? throw new NativeException(what, (int)-result) : result;

    private static SysvObject Decode(SysvKind kind, long id, byte* buffer)
    {
        uint U32(int at) => BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(buffer + at, sizeof(uint)));
        ulong U64(int at) => BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(buffer + at, sizeof(ulong)));
        var (size, count, queueBytes) = kind switch
        {
            SysvKind.SharedMemory => (U64(ShmSizeAt), U64(ShmAttachedAt), 0UL),
            SysvKind.Semaphores => (0UL, U64(SemCountAt), 0UL),
            _ => (0UL, U64(MsgCountAt), U64(MsgQueueBytesAt)),
        };
        return new SysvObject(kind, (int)id, (int)U32(KeyAt), U32(UidAt), U32(GidAt), U32(CuidAt), U32(CgidAt), U32(ModeAt), size, count, queueBytes);
    }
}
