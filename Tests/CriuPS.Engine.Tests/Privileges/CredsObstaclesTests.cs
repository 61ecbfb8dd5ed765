using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Credentials;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Tests.Privileges;

/// <summary>What a session other than root may restore of a thread's credentials: what it has, and no more.</summary>
public class CredsObstaclesTests
{
    private const ulong Full = (1UL << 41) - 1;
    private static readonly ulong Granted = Capability.CheckpointRestore.Bit() | Capability.SysPtrace.Bit();

    internal static SessionPrivileges Session(uint uid, ulong effective, uint securebits = 0, string groups = "54321", uint savedUid = uint.MaxValue) =>
        new(ProcStatus.Parse($"Uid:\t{uid}\t{uid}\t{(savedUid == uint.MaxValue ? uid : savedUid)}\t{uid}\nGid:\t{uid}\t{uid}\t{uid}\t{uid}\nGroups:\t{groups}\n"
            + $"CapInh:\t{effective:x16}\nCapPrm:\t{effective:x16}\nCapEff:\t{effective:x16}\nCapBnd:\t{Full:x16}\nCapAmb:\t{effective:x16}\n"),
            yamaScope: null, securebits);

    private static CredsEntry Saved(uint uid, ulong permitted, uint securebits = 0, ulong bounding = Full, params uint[] groups)
    {
        var creds = new CredsEntry { Uid = uid, Euid = uid, Suid = uid, Fsuid = uid, Gid = uid, Egid = uid, Sgid = uid, Fsgid = uid, Secbits = securebits };
        creds.CapPrm.Add(new[] { (uint)permitted, (uint)(permitted >> 32) });
        creds.CapBnd.Add(new[] { (uint)bounding, (uint)(bounding >> 32) });
        creds.Groups.Add(groups.Length == 0 ? new uint[] { 54321 } : groups);
        return creds;
    }

    [Fact]
    public void OnesOwnProcessNeedsNothing()
    {
        Assert.Empty(Creds.Obstacles(Saved(54321, Granted), Session(54321, Granted)));
        Assert.Empty(Creds.Obstacles(Saved(54321, 0), Session(54321, Granted)));
    }

    [Fact]
    public void AnIdTheSessionHoldsAsItsSavedUidIsItsToTake()
    {
        var saved = Saved(54321, 0);
        saved.Euid = 54322;
        Assert.Empty(Creds.Obstacles(saved, Session(54321, Granted, savedUid: 54322)));
        Assert.Equal([Capability.Setuid], Creds.Obstacles(saved, Session(54321, Granted)).SelectMany(o => o.Lifts));
    }

    [Fact]
    public void RootsProcessNeedsItsIdsAndEveryCapabilityItHeld()
    {
        var obstacles = Creds.Obstacles(Saved(0, Full, groups: 0), Session(54321, Granted)).ToList();
        Assert.Contains(obstacles, o => o.Reason == "it ran as uid 0 (root), and taking another user's ids needs CAP_SETUID" && o.Lifts.SequenceEqual([Capability.Setuid]));
        Assert.Contains(obstacles, o => o.Reason.StartsWith("it ran with group 0", StringComparison.Ordinal) && o.Lifts.SequenceEqual([Capability.Setgid]));
        Assert.Contains(obstacles, o => o.Reason.StartsWith("its supplementary groups (0) are not this session's (54321)", StringComparison.Ordinal));
        var held = Assert.Single(obstacles, o => o.Reason.StartsWith("it held capabilities this session does not have to give (CAP_CHOWN, ", StringComparison.Ordinal));
        Assert.Equal(Enum.GetValues<Capability>().Except([Capability.CheckpointRestore, Capability.SysPtrace]), held.Lifts);
    }

    [Fact]
    public void TheCapabilityThatLiftsAnObstacleLiftsIt()
    {
        var session = Session(54321, Granted | Capability.Setuid.Bit() | Capability.Setgid.Bit());
        var obstacles = Creds.Obstacles(Saved(54322, 0, groups: 54322), session);
        Assert.Empty(obstacles);
    }

    [Fact]
    public void AnotherBoundingSetOrSecurebitsNeedCapSetpcap()
    {
        var narrower = Creds.Obstacles(Saved(54321, 0, bounding: Full & ~Capability.SysAdmin.Bit()), Session(54321, Granted)).Single();
        Assert.Equal("its capability bounding set lacks CAP_SYS_ADMIN, and dropping them needs CAP_SETPCAP", narrower.Reason);
        var bits = Creds.Obstacles(Saved(54321, 0, securebits: 0x1), Session(54321, Granted, securebits: 0x10)).Single();
        Assert.Equal("its securebits (0x1) are not this session's (0x0), and setting them needs CAP_SETPCAP", bits.Reason);
        Assert.Equal([Capability.Setpcap], bits.Lifts);
        // SECBIT_KEEP_CAPS does not survive the exec of the restore's helper: the others do.
        Assert.Empty(Creds.Obstacles(Saved(54321, 0, securebits: 0x2f), Session(54321, Granted, securebits: 0x2f | 0x10)));
    }

    [Fact]
    public void RootPassesOnItsBoundingSetAndOthersWhatTheyHold()
    {
        Assert.Equal(Full, Session(0, Full & ~Capability.SysResource.Bit()).PassedOn);
        Assert.Equal(Granted, Session(54321, Granted).PassedOn);
        Assert.Equal(0x2fu, Session(54321, Granted, securebits: 0x2f | 0x10).SecurebitsPassedOn);
    }
}
