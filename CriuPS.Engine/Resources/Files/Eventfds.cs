using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// eventfd counters (eventfd_file_entry): the counter and EFD_SEMAPHORE from fdinfo; restore creates an eventfd in
/// the engine holding the same count.
/// </summary>
internal sealed class Eventfds : AnonInodeKind
{
    public override FdTypes Type => FdTypes.Eventfd;

    protected override string InodeName => "eventfd";

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Efd.Flags, file.Efd.Fown);

    public override FileEntry Dump(DescriptorDump dump)
    {
        var state = EventfdInfo.Of(dump.Info);
        var entry = new EventfdFileEntry { Id = dump.Id, Flags = dump.Flags, Fown = dump.Owner, Counter = state.Counter };
        if (state.Semaphore)
        {
            entry.CriupsSemaphore = true;
        }
        return new FileEntry { Type = FdTypes.Eventfd, Id = dump.Id, Efd = entry };
    }

    public override FileDescriptor Open(RestoreSession session, FileEntry file) =>
        Eventfd.Create(file.Efd.Counter, file.Efd.CriupsSemaphore ? Eventfd.Semaphore : 0);
}
