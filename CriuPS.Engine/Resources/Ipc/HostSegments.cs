using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Ipc;

/// <summary>
/// A segment the tree had attached in the host's IPC namespace, which other processes share: at restore it is either
/// still there (same id, key and size: attached again as it is, with what it holds now, as every other user of it
/// sees it), gone (made again at its id with the saved contents), or replaced by another object (another key or size
/// at its id, or its key under another id), which is refused naming both: the process would attach a stranger's memory.
/// </summary>
internal static class HostSegments
{
    /// <summary>Finds the saved segment, or makes it again; returns whether it was made.</summary>
    public static bool FindOrMake(RestoreSession session, IpcShmEntry saved, byte[] contents)
    {
        var desc = saved.Desc;
        string what = $"{SysvIpc.Describe(SysvKind.SharedMemory, (int)desc.Id, (int)desc.Key)} ({saved.Size} bytes)";
        if (SysvIpc.Stat(SysvKind.SharedMemory, (int)desc.Id) is { } now)
        {
            if (now.Key != (int)desc.Key || now.Size != saved.Size)
            {
                throw Taken(session, what, $"id {desc.Id} is now the {now} of {now.Size} bytes");
            }
            session.Log.Detail($"{what}: still there, attached again as it is");
            return false;
        }
        if (desc.Key != SysvIpc.IpcPrivate && SysvIpc.List(SysvKind.SharedMemory).FirstOrDefault(s => s.Key == (int)desc.Key) is { } other)
        {
            throw Taken(session, what, $"its key is now the {other}'s");
        }
        SysvObjectImages.MakeSegment(saved, contents);
        session.Log.Detail($"{what}: made again with its saved contents");
        return true;
    }

    private static CheckpointException Taken(RestoreSession session, string what, string now) =>
        new(CheckpointErrorKind.ImageIncompatible,
            $"The tree had the {what} attached in the host's IPC namespace, and {now}: another object took its place.",
            session.Images.Directory,
            "Remove that object (ipcrm) if it is not needed, or restore where the saved segment still exists or its id and key are free.");
}
