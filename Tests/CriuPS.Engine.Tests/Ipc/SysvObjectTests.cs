using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Ipc;
using CriuPS.Native.Interop;
using Xunit;
using Tmds.Linux;

namespace CriuPS.Engine.Tests.Ipc;

/// <summary>
/// System V objects made again from their saved entries, in an IPC namespace of a test thread's own (unshare on that
/// thread alone): each at its saved id with its key, owner, creator, mode and contents, as the restore makes them.
/// </summary>
public class SysvObjectTests
{
    private static readonly byte[] Contents = Enumerable.Range(0, 5000).Select(i => (byte)(i * 13 + 1)).Concat(new byte[3000]).ToArray();

    [Fact]
    public void ObjectsComeBackAtTheirIdsWithOwnerCreatorModeAndContents()
    {
        InOwnIpcNamespace(() =>
        {
            var desc = new IpcDescEntry { Key = 0x1234abcd, Uid = 1000, Gid = 1001, Cuid = 2000, Cgid = 2001, Mode = 0x1a0 /* 0640 */, Id = 7 };
            SysvObjectImages.MakeSegment(new IpcShmEntry { Desc = desc, Size = 5000 }, Contents);

            var segment = SysvIpc.Stat(SysvKind.SharedMemory, 7)!;
            Assert.Equal((0x1234abcd, 1000u, 1001u, 2000u, 2001u, 0x1a0u, 5000UL), (segment.Key, segment.Uid, segment.Gid, segment.Cuid, segment.Cgid, segment.Mode & 0x1ff, segment.Size));
            Assert.Equal(new[] { 7 }, SysvIpc.List(SysvKind.SharedMemory).Select(s => s.Id));
            ulong address = SysvIpc.Attach(7, readOnly: true);
            var read = new byte[5000];
            Marshal.Copy((nint)address, read, 0, read.Length);
            SysvIpc.Detach(address);
            Assert.Equal(Contents[..5000], read);
            Assert.Equal(0UL, SysvIpc.Stat(SysvKind.SharedMemory, 7)!.Count);
        });
    }

    [Fact]
    public void SemaphoresKeepTheirValuesAndQueuesTheirMessagesInOrder()
    {
        InOwnIpcNamespace(() =>
        {
            var set = new IpcDescEntry { Key = 0x42, Uid = 0, Gid = 0, Cuid = 0, Cgid = 0, Mode = 0x180, Id = 3 };
            SysvObjectImages.MakeSemaphores(new IpcSemEntry { Desc = set, Nsems = 3 }, [3, 0, 0, 0, 9, 0, 0, 0]);
            Assert.Equal(new ushort[] { 3, 0, 9 }, SysvIpc.Values(3, 3));

            var queue = new IpcDescEntry { Key = 0x43, Uid = 5, Gid = 6, Cuid = 0, Cgid = 0, Mode = 0x190, Id = 12 };
            var messages = new List<(IpcMsg, byte[])>
            {
                (new IpcMsg { Mtype = 2, Msize = 3 }, [1, 2, 3, 0, 0, 0, 0, 0]),
                (new IpcMsg { Mtype = 1, Msize = 0 }, []),
                (new IpcMsg { Mtype = 2, Msize = 9 }, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0]),
            };
            SysvObjectImages.MakeQueue(new IpcMsgEntry { Desc = queue, Qbytes = 16384, Qnum = 3 }, messages);

            var made = SysvIpc.Stat(SysvKind.MessageQueue, 12)!;
            Assert.Equal((0x43, 5u, 6u, 3UL), (made.Key, made.Uid, made.Gid, made.Count));
            // Copies, in queue order, and the queue keeps them all.
            var copies = Enumerable.Range(0, 3).Select(i => SysvIpc.CopyMessage(12, i, 64)).ToList();
            Assert.Equal(new long[] { 2, 1, 2 }, copies.Select(c => c.Type));
            Assert.Equal(new byte[] { 1, 2, 3 }, copies[0].Text);
            Assert.Empty(copies[1].Text);
            Assert.Equal(new byte[] { 9, 8, 7, 6, 5, 4, 3, 2, 1 }, copies[2].Text);
            Assert.Equal(3UL, SysvIpc.Stat(SysvKind.MessageQueue, 12)!.Count);
        });
    }

    [Fact]
    public void NextIdsAreReadAndSetInTheThreadsNamespace()
    {
        InOwnIpcNamespace(() =>
        {
            Assert.False(IpcSysctls.Read().HasShmNextId, "a new namespace asks for no id");
            IpcSysctls.SetNextId(SysvKind.SharedMemory, 40);
            IpcSysctls.SetNextId(SysvKind.MessageQueue, 41);
            var read = IpcSysctls.Read();
            Assert.Equal((40u, 41u, false), (read.ShmNextId, read.MsgNextId, read.HasSemNextId));
        });
    }

    // Runs the test on a thread of its own that unshares its IPC namespace; the namespace goes with the thread.
    private static void InOwnIpcNamespace(Action test)
    {
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                Syscall.Checked("unshare(CLONE_NEWIPC)", SystemCall.Unshare, (uint)LibC.CLONE_NEWIPC);
                test();
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        });
        thread.Start();
        thread.Join();
        failure?.Throw();
    }
}
