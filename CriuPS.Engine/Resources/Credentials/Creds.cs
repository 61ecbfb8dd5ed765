using System.Runtime.InteropServices;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Credentials;

/// <summary>
/// User and group ids, supplementary groups, capabilities, securebits and no_new_privs of a thread
/// (creds_entry). Restored last, in the order CRIU uses, because dropping privileges ends what we may do.
/// </summary>
internal static class Creds
{
    private const uint SecureNoSetuidFixup = 1 << 2;
    private const uint CapabilityVersion3 = 0x20080522;
    private const int LastCapability = 63;

    [StructLayout(LayoutKind.Sequential)]
    private struct CapHeader
    {
        public uint Version;
        public int Pid;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapData
    {
        public uint Effective, Permitted, Inheritable;
    }

    /// <summary>
    /// A thread's credentials: what its status shows, and <paramref name="securebits"/>, which only the thread can tell
    /// (prctl(PR_GET_SECUREBITS), asked in the batch of <see cref="Threads.ThreadState.Dump"/>: a stop per thread
    /// costs more than the call).
    /// </summary>
    public static CredsEntry Dump(ProcStatus status, uint securebits)
    {
        var uids = status.Uids;
        var gids = status.Gids;
        var creds = new CredsEntry
        {
            Uid = uids[0], Euid = uids[1], Suid = uids[2], Fsuid = uids[3],
            Gid = gids[0], Egid = gids[1], Sgid = gids[2], Fsgid = gids[3],
            Secbits = securebits,
            NoNewPrivs = status.NoNewPrivs,
        };
        creds.CapInh.Add(Halves(status.CapInheritable));
        creds.CapPrm.Add(Halves(status.CapPermitted));
        creds.CapEff.Add(Halves(status.CapEffective));
        creds.CapBnd.Add(Halves(status.CapBounding));
        creds.CapAmb.Add(Halves(status.CapAmbient));
        creds.Groups.Add(status.Groups);
        return creds;
    }

    /// <summary>Whether a thread that now has <paramref name="current"/> credentials needs any change to get <paramref name="saved"/>.</summary>
    public static bool Differ(CredsEntry saved, ProcStatus current)
    {
        var uids = current.Uids;
        var gids = current.Gids;
        return saved.Uid != uids[0] || saved.Euid != uids[1] || saved.Suid != uids[2] || saved.Fsuid != uids[3]
            || saved.Gid != gids[0] || saved.Egid != gids[1] || saved.Sgid != gids[2] || saved.Fsgid != gids[3]
            || Whole(saved.CapEff) != current.CapEffective || Whole(saved.CapPrm) != current.CapPermitted
            || Whole(saved.CapInh) != current.CapInheritable || Whole(saved.CapBnd) != current.CapBounding
            || Whole(saved.CapAmb) != current.CapAmbient || saved.NoNewPrivs != current.NoNewPrivs
            || !saved.Groups.SequenceEqual(current.Groups);
    }

    /// <summary>
    /// Gives a thread that now has <paramref name="current"/> credentials the saved ones, changing only what differs:
    /// each change needs its own capability (CAP_SETUID, CAP_SETGID, CAP_SETPCAP), which a restore by another user
    /// than root has only where <see cref="Obstacles"/> found nothing missing.
    /// </summary>
    public static void Restore(CredsEntry creds, ProcStatus current, RemoteSyscaller caller, ScratchArea scratch)
    {
        uint[] uids = current.Uids, gids = current.Gids;
        bool uidsChange = !uids.SequenceEqual(new[] { creds.Uid, creds.Euid, creds.Suid, creds.Fsuid });
        bool gidsChange = !gids.SequenceEqual(new[] { creds.Gid, creds.Egid, creds.Sgid, creds.Fsgid });
        uint securebits = (uint)caller.Checked("prctl(PR_GET_SECUREBITS)", RemoteCall.GetSecurebits());
        if (uidsChange && uids.Contains(0u) && (securebits & SecureNoSetuidFixup) == 0)
        {
            // Leaving uid 0 would clear the capabilities: keep them until the final capset.
            securebits |= SecureNoSetuidFixup;
            caller.Checked("prctl(PR_SET_SECUREBITS)", RemoteCall.SetSecurebits(securebits));
        }
        scratch.Reset();
        if (!creds.Groups.SequenceEqual(current.Groups))
        {
            caller.Checked("setgroups", RemoteCall.Setgroups(scratch, creds.Groups.ToArray()));
        }
        if (gidsChange)
        {
            caller.Checked("setresgid", RemoteCall.Setresgid(creds.Gid, creds.Egid, creds.Sgid));
            caller.Checked("setfsgid", RemoteCall.Setfsgid(creds.Fsgid));
        }
        if (uidsChange)
        {
            caller.Checked("setresuid", RemoteCall.Setresuid(creds.Uid, creds.Euid, creds.Suid));
            caller.Checked("setfsuid", RemoteCall.Setfsuid(creds.Fsuid));
        }

        ulong drop = current.CapBounding & ~Whole(creds.CapBnd);
        for (int cap = 0; cap <= LastCapability; cap++)
        {
            if ((drop & (1UL << cap)) != 0)
            {
                // EINVAL for capabilities this kernel does not know: nothing to drop.
                caller.Call(RemoteCall.DropBoundingCapability(cap));
            }
        }
        if (creds.Secbits != securebits)
        {
            caller.Checked("prctl(PR_SET_SECUREBITS)", RemoteCall.SetSecurebits(creds.Secbits));
        }

        ulong eff = Whole(creds.CapEff), prm = Whole(creds.CapPrm), inh = Whole(creds.CapInh);
        if (eff != current.CapEffective || prm != current.CapPermitted || inh != current.CapInheritable)
        {
            var header = scratch.Put(new CapHeader { Version = CapabilityVersion3, Pid = 0 });
            var data = scratch.PutArray<CapData>(new[]
            {
                new CapData { Effective = (uint)eff, Permitted = (uint)prm, Inheritable = (uint)inh },
                new CapData { Effective = (uint)(eff >> 32), Permitted = (uint)(prm >> 32), Inheritable = (uint)(inh >> 32) },
            });
            caller.Checked("capset", RemoteCall.Capset(header, data));
        }

        ulong ambient = Whole(creds.CapAmb);
        if (ambient != current.CapAmbient)
        {
            // The thread may have come with ambient capabilities of the session's (see InheritedCapabilities).
            caller.Checked("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", RemoteCall.ClearAmbientCapabilities());
            for (int cap = 0; cap <= LastCapability; cap++)
            {
                if ((ambient & (1UL << cap)) != 0)
                {
                    caller.Checked($"prctl(PR_CAP_AMBIENT_RAISE, {cap})", RemoteCall.RaiseAmbientCapability(cap));
                }
            }
        }
        if (creds.NoNewPrivs != 0 && current.NoNewPrivs == 0)
        {
            caller.Checked("prctl(PR_SET_NO_NEW_PRIVS)", RemoteCall.SetNoNewPrivileges());
        }
    }

    /// <summary>
    /// What this session lacks to give a thread its saved credentials. The thread starts with the session's ids,
    /// groups and securebits and the capabilities it passes on; a process may switch among its own real, effective
    /// and saved ids and drop capabilities, but any other change needs a capability.
    /// </summary>
    public static IEnumerable<Obstacle> Obstacles(CredsEntry saved, SessionPrivileges session)
    {
        var own = session.Uids.Take(3).ToHashSet();
        if (!session.Has(Capability.Setuid) && new[] { saved.Uid, saved.Euid, saved.Suid, saved.Fsuid }.Any(u => !own.Contains(u)))
        {
            yield return new($"it ran as {SessionPrivileges.DescribeUser(saved.Euid)}, and taking another user's ids needs CAP_SETUID", Capability.Setuid);
        }
        var ownGroups = session.Gids.Take(3).ToHashSet();
        if (!session.Has(Capability.Setgid) && new[] { saved.Gid, saved.Egid, saved.Sgid, saved.Fsgid }.Any(g => !ownGroups.Contains(g)))
        {
            yield return new($"it ran with group {saved.Egid}, and taking another group's ids needs CAP_SETGID", Capability.Setgid);
        }
        if (!session.Has(Capability.Setgid) && !saved.Groups.SequenceEqual(session.Groups))
        {
            yield return new($"its supplementary groups ({string.Join(" ", saved.Groups)}) are not this session's ({string.Join(" ", session.Groups)}), "
                + "and setting them needs CAP_SETGID", Capability.Setgid);
        }
        ulong lacking = Whole(saved.CapPrm) & ~session.PassedOn;
        if (lacking != 0)
        {
            yield return new($"it held capabilities this session does not have to give ({Capabilities.Describe(lacking)})",
                Enum.GetValues<Capability>().Where(c => c.In(lacking)).ToList());
        }
        if (!session.Has(Capability.Setpcap) && (session.Bounding & ~Whole(saved.CapBnd)) != 0)
        {
            yield return new($"its capability bounding set lacks {Capabilities.Describe(session.Bounding & ~Whole(saved.CapBnd))}, and dropping them needs CAP_SETPCAP",
                Capability.Setpcap);
        }
        if (!session.Has(Capability.Setpcap) && saved.Secbits != session.SecurebitsPassedOn)
        {
            yield return new($"its securebits (0x{saved.Secbits:x}) are not this session's (0x{session.SecurebitsPassedOn:x}), and setting them needs CAP_SETPCAP",
                Capability.Setpcap);
        }
    }

    private static uint[] Halves(ulong mask) => new[] { (uint)mask, (uint)(mask >> 32) };

    internal static ulong Whole(Google.Protobuf.Collections.RepeatedField<uint> halves) =>
        (halves.Count > 0 ? halves[0] : 0) | (halves.Count > 1 ? (ulong)halves[1] << 32 : 0);
}
