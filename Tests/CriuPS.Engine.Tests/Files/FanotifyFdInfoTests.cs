using CriuPS.Native.Proc;

namespace CriuPS.Engine.Tests.Files;

/// <summary>Reading a fanotify group from fdinfo text as Linux 6.18 writes it.</summary>
public sealed class FanotifyFdInfoTests
{
    [Fact]
    public void ReadsTheGroupAndEveryKindOfMark()
    {
        var info = FdInfo.Parse("pos:\t0\nflags:\t04002\nmnt_id:\t17\nino:\t1038\n"
            + "fanotify flags:2 event-flags:8000\n"
            + "fanotify mnt_id:1a mflags:0 mask:8 ignored_mask:0\n"
            + "fanotify ino:b2228b sdev:fe00000 mflags:40 mask:0 ignored_mask:20 fhandle-bytes:8 fhandle-type:1 f_handle:8b22b2008102aae0\n"
            + "fanotify sdev:800013 mflags:0 mask:3b ignored_mask:0\n");
        var group = FanotifyInfo.Of(info);
        Assert.Equal(2u, group.Flags);
        Assert.Equal(0x8000u, group.EventFileFlags);
        Assert.Equal(3, group.Marks.Count);

        var inode = group.Marks.Single(m => m.Kind == FanotifyMarkInfo.OnInode);
        Assert.Equal(0xb2228bUL, inode.Inode);
        Assert.Equal((254u, 0u), (inode.DeviceMajor, inode.DeviceMinor));
        Assert.Equal((0x40u, 0u, 0x20u), (inode.Flags, inode.Mask, inode.IgnoredMask));
        Assert.Equal(1, inode.HandleType);
        Assert.Equal(Convert.FromHexString("8b22b2008102aae0"), inode.Handle);

        var mount = group.Marks.Single(m => m.Kind == FanotifyMarkInfo.OnMount);
        Assert.Equal(0x1a, mount.MountId);
        Assert.Equal(8u, mount.Mask);

        var filesystem = group.Marks.Single(m => m.Kind == FanotifyMarkInfo.OnFilesystem);
        Assert.Equal((8u, 0x13u), (filesystem.DeviceMajor, filesystem.DeviceMinor));
        Assert.Equal(0x3bu, filesystem.Mask);
    }

    [Fact]
    public void AGroupWithoutMarksHasNone()
    {
        var group = FanotifyInfo.Of(FdInfo.Parse("pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\nfanotify flags:10 event-flags:0\n"));
        Assert.Equal(0x10u, group.Flags);
        Assert.Empty(group.Marks);
    }

    [Fact]
    public void RefusesFdinfoWithoutTheGroupLine()
    {
        Assert.Throws<InvalidDataException>(() => FanotifyInfo.Of(FdInfo.Parse("pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\n")));
    }
}
