using CriuPS.Engine.Errors;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Restore;
using CriuPS.Engine.Tests.Images;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Tests.Privileges;

/// <summary>
/// Which path denies a session, seen from a thread of root's that gave up CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH:
/// file modes then bind it as they bind any user (capabilities belong to the thread, which ends with the test).
/// </summary>
public class PathAccessTests
{
    private const uint Stranger = 54321;

    [Fact]
    public void AnImageDirectoryOfAnotherUserIsPermissionDeniedNamingItsOwnerAndMode()
    {
        using var temp = new TempDirectory();
        var image = Directory.CreateDirectory(temp.PathOf("img")).FullName;
        File.WriteAllText(Path.Combine(image, "inventory.img"), "");
        File.SetUnixFileMode(image, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Chown(image, Stranger);

        var (blocker, denial, read, elsewhere) = WithoutDacOverride(() =>
        {
            var failure = Assert.Throws<CheckpointException>(() => ImageSet.Read(image));
            return (PathAccess.Blocker(Path.Combine(image, "inventory.img")), PathAccess.Denial(image, "the image directory", Faccessat.Read | Faccessat.Search),
                failure, PathAccess.Denial(temp.PathOf("missing"), "the image directory"));
        });

        Assert.Equal(image, blocker);
        Assert.NotNull(denial);
        Assert.Equal(CheckpointErrorKind.PermissionDenied, denial.Kind);
        Assert.Equal(image, denial.Target);
        Assert.Equal($"Permission denied: the image directory '{image}' (owner uid {Stranger}, mode 0700) may not be read by this session (uid 0 (root)).", denial.Message);
        Assert.Equal(CheckpointErrorKind.PermissionDenied, read.Kind);
        Assert.Null(elsewhere);
    }

    [Fact]
    public void AFileInsideADirectoryItMayNotSearchNamesTheDirectory()
    {
        using var temp = new TempDirectory();
        var directory = Directory.CreateDirectory(temp.PathOf("closed")).FullName;
        var file = Path.Combine(directory, "core-1.img");
        File.WriteAllText(file, "");
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherRead);
        Chown(directory, Stranger);

        var denial = WithoutDacOverride(() => PathAccess.Denied(file, "the image file"));

        Assert.Equal($"Permission denied: the image file '{file}' is inside '{directory}' (owner uid {Stranger}, mode 0704), which this session (uid 0 (root)) may not search.",
            denial.Message);
        Assert.Null(PathAccess.Blocker(file)); // with its capabilities, root is never denied
    }

    [Fact]
    public void AnAmbientCapabilityIsRaisedAndLoweredOnTheCallingThreadOnly()
    {
        static ulong Ambient() => ProcStatus.Parse(File.ReadAllText("/proc/thread-self/status")).CapAmbient;
        var seen = OnThreadOfItsOwn(() =>
        {
            ulong inheritable = ThreadCapabilities.Inheritable;
            ThreadCapabilities.SetInheritable(inheritable | Capability.Chown.Bit());
            long raised = ThreadCapabilities.TryRaiseAmbient(Capability.Chown);
            ulong during = Ambient();
            ulong elsewhere = ProcStatus.Read(Environment.ProcessId).CapAmbient;
            ThreadCapabilities.LowerAmbient(Capability.Chown);
            ThreadCapabilities.SetInheritable(inheritable);
            return (raised, during, elsewhere, after: Ambient(), inheritable: ThreadCapabilities.Inheritable == inheritable);
        });
        Assert.Equal(0, seen.raised);
        Assert.Equal(Capability.Chown.Bit(), seen.during);
        Assert.Equal(0UL, seen.elsewhere);
        Assert.Equal(0UL, seen.after);
        Assert.True(seen.inheritable);
    }

    private static T WithoutDacOverride<T>(Func<T> action) => OnThreadOfItsOwn(() =>
    {
        DropEffective(Capability.DacOverride.Bit() | Capability.DacReadSearch.Bit());
        return action();
    });

    private static T OnThreadOfItsOwn<T>(Func<T> action)
    {
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = action();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        return failure is null ? result : throw new InvalidOperationException("the test's thread failed", failure);
    }

    private static unsafe void DropEffective(ulong capabilities)
    {
        var header = stackalloc uint[2] { 0x20080522, 0 };
        var data = stackalloc uint[6];
        Syscall.Checked("capget", SystemCall.Capget, (ulong)header, (ulong)data);
        data[0] &= ~(uint)capabilities;
        data[3] &= ~(uint)(capabilities >> 32);
        Syscall.Checked("capset", SystemCall.Capset, (ulong)header, (ulong)data);
    }

    private static unsafe void Chown(string path, uint uid)
    {
        fixed (byte* p = FileDescriptor.NullTerminated(path))
        {
            Assert.Equal(0, Tmds.Linux.LibC.chown(p, uid, uid));
        }
    }
}
