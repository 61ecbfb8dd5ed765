using CriuPS.Engine.Resources.Files;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Tests.Files;

/// <summary>Reading the state of anonymous-inode files from fdinfo text as Linux 6.18 writes it.</summary>
public sealed class AnonInodeFdInfoTests
{
    private const string Header = "pos:\t0\nflags:\t04002\nmnt_id:\t17\nino:\t21\n";

    [Fact]
    public void ReadsAnEventfdCounterInHexAndItsSemaphoreFlag()
    {
        var info = FdInfo.Parse(Header + "eventfd-count:               1f\neventfd-id: 3\neventfd-semaphore: 1\n");
        Assert.Equal(new EventfdInfo(0x1f, true), EventfdInfo.Of(info));
        Assert.Equal(0x802, info.Flags);
    }

    [Fact]
    public void AnEventfdWithoutTheSemaphoreLineIsNotASemaphore()
    {
        var info = FdInfo.Parse(Header + "eventfd-count:                5\n");
        Assert.Equal(new EventfdInfo(5, false), EventfdInfo.Of(info));
    }

    [Fact]
    public void ReadsASignalfdMask()
    {
        var info = FdInfo.Parse(Header + "sigmask:\t0000000000000800\n");
        Assert.Equal(0x800UL, SignalfdInfo.Of(info).Mask);
    }

    [Fact]
    public void ReadsATimerfdWithOctalSettimeFlags()
    {
        var info = FdInfo.Parse(Header + "clockid: 0\nticks: 4\nsettime flags: 03\nit_value: (999, 518375356)\nit_interval: (0, 50000000)\n");
        Assert.Equal(new TimerfdInfo(0, 4, 3, 999, 518375356, 0, 50000000), TimerfdInfo.Of(info));
    }

    [Fact]
    public void RefusesATimerfdWithoutItsFields()
    {
        var info = FdInfo.Parse(Header + "clockid: 1\n");
        Assert.Throws<InvalidDataException>(() => TimerfdInfo.Of(info));
    }

    [Fact]
    public void ReadsEveryInotifyWatchWithItsHandle()
    {
        var info = FdInfo.Parse("pos:\t0\nflags:\t04000\nmnt_id:\t17\nino:\t21\n"
            + "inotify wd:2 ino:35a sdev:fe00001 mask:4000002 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:5a03000000000000\n"
            + "inotify wd:1a ino:3c570 sdev:800010 mask:80000100 ignored_mask:0 fhandle-bytes:c fhandle-type:81 f_handle:70c50300aabbccdd01020304\n");
        var watches = InotifyWatchInfo.Of(info);
        Assert.Equal(2, watches.Count);
        Assert.Equal(2, watches[0].Wd);
        Assert.Equal(0x35aUL, watches[0].Inode);
        Assert.Equal((254u, 1u), (watches[0].DeviceMajor, watches[0].DeviceMinor));
        Assert.Equal(0x4000002u, watches[0].Mask);
        Assert.Equal(1, watches[0].HandleType);
        Assert.Equal(new byte[] { 0x5a, 0x03, 0, 0, 0, 0, 0, 0 }, watches[0].Handle);
        Assert.Equal(0x1a, watches[1].Wd);
        Assert.Equal((8u, 0x10u), (watches[1].DeviceMajor, watches[1].DeviceMinor));
        Assert.Equal(0x80000100u, watches[1].Mask);
        Assert.Equal(0x81, watches[1].HandleType);
        Assert.Equal(12, watches[1].Handle!.Length);
    }

    [Fact]
    public void AnInotifyWatchOnAFilesystemWithoutHandlesHasNone()
    {
        var info = FdInfo.Parse(Header + "inotify wd:1 ino:2 sdev:5 mask:2 ignored_mask:0 \n");
        var watch = Assert.Single(InotifyWatchInfo.Of(info));
        Assert.Null(watch.Handle);
    }

    [Fact]
    public void RefusesAnInotifyHandleOfTheWrongLength()
    {
        var info = FdInfo.Parse(Header + "inotify wd:1 ino:2 sdev:5 mask:2 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:5a03\n");
        Assert.Throws<InvalidDataException>(() => InotifyWatchInfo.Of(info));
    }

    [Fact]
    public void AnInstanceWithoutWatchesOrRegistrationsHasNone()
    {
        var info = FdInfo.Parse(Header);
        Assert.Empty(InotifyWatchInfo.Of(info));
        Assert.Empty(EpollTargetInfo.Of(info));
    }

    [Fact]
    public void ReadsEveryEpollRegistration()
    {
        var info = FdInfo.Parse(Header
            + "tfd:        6 events:       19 data:                7  pos:0 ino:15 sdev:10\n"
            + "tfd:      123 events: 80000019 data:       1234567890  pos:4096 ino:5cf05 sdev:fe00000\n");
        Assert.Equal(
            new[]
            {
                new EpollTargetInfo(6, 0x19, 7, 0, 0x15, 0x10),
                new EpollTargetInfo(123, 0x80000019, 0x1234567890, 4096, 0x5cf05, 0xfe00000),
            },
            EpollTargetInfo.Of(info));
    }

    [Fact]
    public void FindsMountPointsByDeviceAndUnescapesThem()
    {
        var text = "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
            + "24 23 0:22 / /dev/shm rw,relatime - tmpfs tmpfs rw\n"
            + "90 26 254:0 /srv /mnt/with\\040space rw - ext4 /dev/vda rw\n";
        Assert.Equal(new[] { "/", "/mnt/with space" }, MountInfo.Parse(text).Where(m => m.Major == 254 && m.Minor == 0).Select(m => m.MountPoint));
    }

    [Fact]
    public void StoresAFileHandleAsCriuDoesAndReadsItBack()
    {
        byte[] handle = { 0x5a, 0x03, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb, 0xcc };
        var entry = FileHandles.ToEntry(1, handle, "/srv/watched");
        Assert.Equal(16, entry.Handle.Count);
        Assert.Equal(0x35aUL, entry.Handle[0]);
        Assert.Equal(0xccbbaaUL, entry.Handle[1]);
        Assert.Equal(11u, entry.Bytes);
        Assert.Equal(handle, FileHandles.FromEntry(entry, "files.img"));
    }
}
