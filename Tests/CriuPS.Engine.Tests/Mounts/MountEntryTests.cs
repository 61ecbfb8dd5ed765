using CriuPS.Engine.Resources.Mounts;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Tests.Mounts;

/// <summary>Reading mountinfo lines as Linux 6.18 writes them, and the flags and data a mount is made again with.</summary>
public sealed class MountEntryTests
{
    [Fact]
    public void ReadsEveryFieldOfALineWithPropagationAndAnEscapedPath()
    {
        var mounts = MountEntry.Parse("44 26 254:0 /run/with\\040space /run/netns rw,nosuid,relatime shared:1 master:7 - ext4 /dev/vda rw,discard\n");
        var mount = Assert.Single(mounts);
        Assert.Equal(new MountEntry(44, 26, 254, 0, "/run/with space", "/run/netns", "rw,nosuid,relatime", 1, 7, "ext4", "/dev/vda", "rw,discard"), mount);
    }

    [Fact]
    public void ALineWithoutOptionalFieldsHasNoPeerGroups()
    {
        var mount = Assert.Single(MountEntry.Parse("27 26 0:24 / /mnt/x ro,nosuid,nodev,relatime - tmpfs model_tools_unavailable ro,size=4k,mode=755"));
        Assert.Equal((0, 0), (mount.SharedId, mount.MasterId));
        Assert.Equal("tmpfs", mount.FsType);
        Assert.Equal("ro,size=4k,mode=755", mount.SuperOptions);
    }

    [Fact]
    public void ALineWithoutTheSeparatorIsRefused() =>
        Assert.Throws<FormatException>(() => MountEntry.Parse("27 26 0:24 / /mnt/x rw tmpfs tmpfs rw"));

    [Fact]
    public void MountOptionsAreFlagsAndSuperblockOptionsTheDataLessReadWrite()
    {
        Assert.Equal(MountFlags.ReadOnly | MountFlags.NoSuid | MountFlags.NoDev | MountFlags.RelAtime, MountFlags.Of("ro,nosuid,nodev,relatime"));
        Assert.Equal(0UL, MountFlags.Of("rw"));
        Assert.Equal(MountFlags.ReadOnly, MountFlags.OfSuperblock("ro,size=4k"));
        Assert.Equal("size=4k,mode=755", MountFlags.Data("ro,size=4k,mode=755"));
    }

    [Theory]
    [InlineData("overlay")]
    [InlineData("fuse.sshfs")]
    [InlineData("nfs4")]
    [InlineData("cifs")]
    public void FilesystemsWhoseContentsLiveElsewhereAreRefused(string type) => Assert.NotNull(FilesystemKinds.RefusalOf(type));

    [Theory]
    [InlineData("tmpfs")]
    [InlineData("proc")]
    [InlineData("ext4")]
    public void OtherFilesystemsAreNot(string type) => Assert.Null(FilesystemKinds.RefusalOf(type));
}
