using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// signalfds (signalfd_entry): their signal mask. A signalfd reads the signals pending for whoever reads it, so
/// one created in the engine serves the restored process, whose pending signals are restored on their own.
/// </summary>
internal sealed class Signalfds : AnonInodeKind
{
    public override FdTypes Type => FdTypes.Signalfd;

    protected override string InodeName => "signalfd";

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Sgfd.Flags, file.Sgfd.Fown);

    public override FileEntry Dump(DescriptorDump dump) => new()
    {
        Type = FdTypes.Signalfd,
        Id = dump.Id,
        Sgfd = new SignalfdEntry { Id = dump.Id, Flags = dump.Flags, Fown = dump.Owner, Sigmask = SignalfdInfo.Of(dump.Info).Mask },
    };

    public override FileDescriptor Open(RestoreSession session, FileEntry file) =>
        Signalfd.Create(file.Sgfd.Sigmask, 0);
}
