using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Cgroups;
using CriuPS.Engine.Restore.Checks;
using CriuPS.Engine.Tests.Images;

namespace CriuPS.Engine.Tests.Cgroups;

/// <summary>Where cgroup hierarchies are found, and cgroup.img's values that must never make or join a cgroup elsewhere.</summary>
public sealed class CgroupImageTests : IDisposable
{
    private readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    [Fact]
    public void HierarchiesAreNamedAsProcCgroupNamesThem()
    {
        // A hybrid layout (v1 controllers, cpu and cpuacct together, a named hierarchy, v2), and a container's view of a subtree.
        var mountinfo = Path.Combine(temp.Path, "mountinfo");
        File.WriteAllLines(mountinfo, [
            "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
            "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpuacct,cpu",
            "34 30 0:31 /jobs /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
            "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd",
            "40 30 0:37 / /sys/fs/cgroup/my\\040v2 rw,relatime - cgroup2 cgroup2 rw",
        ]);
        var mounted = CgroupHierarchy.Mounted(mountinfo);

        Assert.Equal(["cpu,cpuacct", "memory", "name=systemd", ""], mounted.Keys);
        Assert.Equal(["cpu", "cpuacct"], mounted["cpu,cpuacct"].Controllers);
        Assert.Equal("/sys/fs/cgroup/my v2/a/b", mounted[""].DirectoryOf("/a/b"));
        Assert.Equal("/sys/fs/cgroup/memory/a", mounted["memory"].DirectoryOf("/jobs/a"));
        Assert.Equal("/sys/fs/cgroup/memory", mounted["memory"].DirectoryOf("/jobs"));
        Assert.Null(mounted["memory"].DirectoryOf("/jobsother/a"));
        Assert.Equal("v2", mounted[""].Shown);
    }

    [Theory]
    [InlineData("/../escape")]
    [InlineData("/a/./b")]
    [InlineData("relative")]
    public void APathOutsideItsHierarchyIsDamage(string path)
    {
        var entry = new CgroupEntry();
        entry.Sets.Add(new CgSetEntry { Id = 1, Ctls = { new CgMemberEntry { Name = "memory", Path = path } } });

        var error = Assert.Throws<CheckpointException>(() => CgroupChecks.Check(temp.Path, entry, []));

        Assert.Equal(CheckpointErrorKind.ImageCorrupt, error.Kind);
        Assert.Contains("sets[0].ctls[0]", error.Message);
    }

    [Theory]
    [InlineData("..")]
    [InlineData("a/../../b")]
    [InlineData("")]
    public void ADirectoryNameThatLeavesItsParentIsDamage(string name)
    {
        var entry = new CgroupEntry();
        var controller = new CgControllerEntry { Cnames = { "memory" } };
        controller.Dirs.Add(new CgroupDirEntry { DirName = "ok", Children = { new CgroupDirEntry { DirName = name } } });
        entry.Controllers.Add(controller);

        var error = Assert.Throws<CheckpointException>(() => CgroupChecks.Check(temp.Path, entry, []));

        Assert.Equal(CheckpointErrorKind.ImageCorrupt, error.Kind);
        Assert.Contains("controllers[0].dirs[0].children[0]", error.Message);
    }

    [Fact]
    public void SetIdsAreUsedOnce()
    {
        var entry = new CgroupEntry();
        entry.Sets.Add(new CgSetEntry { Id = 3 });
        entry.Sets.Add(new CgSetEntry { Id = 3 });

        var error = Assert.Throws<CheckpointException>(() => CgroupChecks.Check(temp.Path, entry, []));

        Assert.Contains("sets[0] and sets[1] have the same id, 3", error.Message);
    }
}
