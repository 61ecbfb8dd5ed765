using System.Globalization;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Ipc;

/// <summary>
/// The sysctls of an IPC namespace (ipcns-var-ID.img, CRIU's IpcVarEntry): the System V limits of kernel/, the POSIX
/// message queue limits of fs/mqueue/, and kernel/{msg,sem,shm}_next_id, the id the next object of each kind gets
/// (-1, left out of the image, when none is asked for). /proc/sys shows the IPC namespace of the thread that opens a
/// file: these are read and written by an engine thread inside the namespace (Setns.EnterIpc).
/// </summary>
internal static class IpcSysctls
{
    private const string Kernel = "/proc/sys/kernel/", Mqueue = "/proc/sys/fs/mqueue/";

    /// <summary>Reads the calling thread's IPC namespace's sysctls.</summary>
    public static IpcVarEntry Read()
    {
        var entry = new IpcVarEntry
        {
            MsgCtlmax = U32(Kernel + "msgmax"),
            MsgCtlmnb = U32(Kernel + "msgmnb"),
            MsgCtlmni = U32(Kernel + "msgmni"),
            AutoMsgmni = U32(Kernel + "auto_msgmni"),
            ShmCtlmax = U64(Kernel + "shmmax"),
            ShmCtlall = U64(Kernel + "shmall"),
            ShmCtlmni = U32(Kernel + "shmmni"),
            ShmRmidForced = U32(Kernel + "shm_rmid_forced"),
            MqQueuesMax = U32(Mqueue + "queues_max"),
            MqMsgMax = U32(Mqueue + "msg_max"),
            MqMsgsizeMax = U32(Mqueue + "msgsize_max"),
            MqMsgDefault = U32(Mqueue + "msg_default"),
            MqMsgsizeDefault = U32(Mqueue + "msgsize_default"),
        };
        entry.SemCtls.AddRange(Text(Kernel + "sem").Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries).Select(v => uint.Parse(v, CultureInfo.InvariantCulture)));
        if (NextId(SysvKind.MessageQueue) is { } msg)
        {
            entry.MsgNextId = msg;
        }
        if (NextId(SysvKind.Semaphores) is { } sem)
        {
            entry.SemNextId = sem;
        }
        if (NextId(SysvKind.SharedMemory) is { } shm)
        {
            entry.ShmNextId = shm;
        }
        return entry;
    }

    /// <summary>
    /// Gives the calling thread's IPC namespace the saved limits (each written only where it differs: auto_msgmni is
    /// a relic that warns when written); the next ids come last, once the objects exist (<see cref="RestoreNextIds"/>).
    /// </summary>
    public static void RestoreLimits(IpcVarEntry saved)
    {
        Write(Kernel + "sem", string.Join('\t', saved.SemCtls.Select(v => v.ToString(CultureInfo.InvariantCulture))));
        Write(Kernel + "msgmax", saved.MsgCtlmax);
        Write(Kernel + "msgmnb", saved.MsgCtlmnb);
        Write(Kernel + "msgmni", saved.MsgCtlmni);
        Write(Kernel + "auto_msgmni", saved.AutoMsgmni);
        Write(Kernel + "shmmax", saved.ShmCtlmax);
        Write(Kernel + "shmall", saved.ShmCtlall);
        Write(Kernel + "shmmni", saved.ShmCtlmni);
        Write(Kernel + "shm_rmid_forced", saved.ShmRmidForced);
        Write(Mqueue + "queues_max", saved.MqQueuesMax);
        Write(Mqueue + "msg_max", saved.MqMsgMax);
        Write(Mqueue + "msgsize_max", saved.MqMsgsizeMax);
        if (saved.HasMqMsgDefault)
        {
            Write(Mqueue + "msg_default", saved.MqMsgDefault);
        }
        if (saved.HasMqMsgsizeDefault)
        {
            Write(Mqueue + "msgsize_default", saved.MqMsgsizeDefault);
        }
    }

    /// <summary>The ids the namespace's next objects were to get, as saved.</summary>
    public static void RestoreNextIds(IpcVarEntry saved)
    {
        if (saved.HasMsgNextId)
        {
            SetNextId(SysvKind.MessageQueue, (int)saved.MsgNextId);
        }
        if (saved.HasSemNextId)
        {
            SetNextId(SysvKind.Semaphores, (int)saved.SemNextId);
        }
        if (saved.HasShmNextId)
        {
            SetNextId(SysvKind.SharedMemory, (int)saved.ShmNextId);
        }
    }

    /// <summary>Asks that the next object of the kind made in the calling thread's IPC namespace get <paramref name="id"/>.</summary>
    public static void SetNextId(SysvKind kind, int id) => File.WriteAllText(NextIdPath(kind), id.ToString(CultureInfo.InvariantCulture));

    private static uint? NextId(SysvKind kind)
    {
        int id = int.Parse(Text(NextIdPath(kind)), CultureInfo.InvariantCulture);
        return id < 0 ? null : (uint)id;
    }

    private static string NextIdPath(SysvKind kind) => Kernel + kind switch
    {
        SysvKind.SharedMemory => "shm_next_id",
        SysvKind.Semaphores => "sem_next_id",
        _ => "msg_next_id",
    };

    private static string Text(string path) => File.ReadAllText(path).Trim();

    private static uint U32(string path) => uint.Parse(Text(path), CultureInfo.InvariantCulture);

    private static ulong U64(string path) => ulong.Parse(Text(path), CultureInfo.InvariantCulture);

    private static void Write(string path, ulong value) => Write(path, value.ToString(CultureInfo.InvariantCulture));

    private static void Write(string path, string value)
    {
        if (Text(path) != value)
        {
            File.WriteAllText(path, value);
        }
    }
}
