using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Ipc;

/// <summary>
/// A System V object the tree used in the host's IPC namespace, which other processes share (a segment it attached,
/// or an object named with -IpcKey): at restore it is either still there (same id and key, and a segment's size or a
/// set's count: used again as it is, with what it holds now, as every other user of it sees it), gone (made again at
/// its id with the saved contents), or replaced by another object (another key or shape at its id, or its key under
/// another id), which is refused naming both: the process would use a stranger's object.
/// </summary>
internal static class HostObjects
{
    /// <summary>Finds the saved object, or makes it again with <paramref name="make"/>; returns whether it was made.</summary>
    /// <param name="shape">A segment's size or a set's number of semaphores (a queue has none: 0).</param>
    public static bool FindOrMake(RestoreSession session, SysvKind kind, IpcDescEntry desc, ulong shape, Action make)
    {
        string what = SysvIpc.Describe(kind, (int)desc.Id, (int)desc.Key) + Shape(kind, shape);
        if (SysvIpc.Stat(kind, (int)desc.Id) is { } now)
        {
            ulong nowShape = kind == SysvKind.SharedMemory ? now.Size : kind == SysvKind.Semaphores ? now.Count : 0;
            if (now.Key != (int)desc.Key || nowShape != shape)
            {
                throw Taken(session, what, $"id {desc.Id} is now the {now}{Shape(kind, nowShape)}");
            }
            session.Log.Detail($"{what}: still there, used again as it is");
            return false;
        }
        if (desc.Key != SysvIpc.IpcPrivate && SysvIpc.List(kind).FirstOrDefault(o => o.Key == (int)desc.Key) is { } other)
        {
            throw Taken(session, what, $"its key is now the {other}'s");
        }
        make();
        session.Log.Detail($"{what}: made again with its saved contents");
        return true;
    }

    private static string Shape(SysvKind kind, ulong shape) => kind switch
    {
        SysvKind.SharedMemory => $" of {shape} bytes",
        SysvKind.Semaphores => $" of {shape} semaphores",
        _ => "",
    };

    private static CheckpointException Taken(RestoreSession session, string what, string now) =>
        new(CheckpointErrorKind.ImageIncompatible,
            $"The tree used the {what} in the host's IPC namespace, and {now}: another object took its place.",
            session.Images.Directory,
            "Remove that object (ipcrm) if it is not needed, or restore where the saved object still exists or its id and key are free.");
}
