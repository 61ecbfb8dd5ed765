using System.Runtime.InteropServices;
using CriuPS.Engine.Images.Proto;
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
    private const int PrGetSecurebits = 27, PrSetSecurebits = 28, PrCapbsetDrop = 24, PrSetNoNewPrivs = 38, PrCapAmbient = 47;
    private const int PrCapAmbientRaise = 2;
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

    public static CredsEntry Dump(ProcStatus status, RemoteSyscaller caller)
    {
        var uids = status.Uids;
        var gids = status.Gids;
        var creds = new CredsEntry
        {
            Uid = uids[0], Euid = uids[1], Suid = uids[2], Fsuid = uids[3],
            Gid = gids[0], Egid = gids[1], Sgid = gids[2], Fsgid = gids[3],
            Secbits = (uint)caller.Checked("prctl(PR_GET_SECUREBITS)", SyscallNumber.Prctl, PrGetSecurebits),
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

    public static unsafe void Restore(CredsEntry creds, RemoteSyscaller caller, ScratchArea scratch)
    {
        // Keep our capabilities across the uid change until the final capset.
        caller.Checked("prctl(PR_SET_SECUREBITS)", SyscallNumber.Prctl, PrSetSecurebits, SecureNoSetuidFixup);
        scratch.Reset();
        var groups = scratch.PutArray<uint>(creds.Groups.ToArray());
        caller.Checked("setgroups", SyscallNumber.Setgroups, (ulong)creds.Groups.Count, groups.Value);
        caller.Checked("setresgid", SyscallNumber.Setresgid, creds.Gid, creds.Egid, creds.Sgid);
        caller.Checked("setfsgid", SyscallNumber.Setfsgid, creds.Fsgid);
        caller.Checked("setresuid", SyscallNumber.Setresuid, creds.Uid, creds.Euid, creds.Suid);
        caller.Checked("setfsuid", SyscallNumber.Setfsuid, creds.Fsuid);

        ulong bounding = Whole(creds.CapBnd);
        for (int cap = 0; cap <= LastCapability; cap++)
        {
            if ((bounding & (1UL << cap)) == 0)
            {
                // EINVAL for capabilities this kernel does not know: nothing to drop.
                caller.Call(SyscallNumber.Prctl, PrCapbsetDrop, (ulong)cap);
            }
        }
        caller.Checked("prctl(PR_SET_SECUREBITS)", SyscallNumber.Prctl, PrSetSecurebits, creds.Secbits);

        ulong eff = Whole(creds.CapEff), prm = Whole(creds.CapPrm), inh = Whole(creds.CapInh);
        var header = scratch.Put(new CapHeader { Version = CapabilityVersion3, Pid = 0 });
        var data = scratch.PutArray<CapData>(new[]
        {
            new CapData { Effective = (uint)eff, Permitted = (uint)prm, Inheritable = (uint)inh },
            new CapData { Effective = (uint)(eff >> 32), Permitted = (uint)(prm >> 32), Inheritable = (uint)(inh >> 32) },
        });
        caller.Checked("capset", SyscallNumber.Capset, header.Value, data.Value);

        ulong ambient = Whole(creds.CapAmb);
        for (int cap = 0; cap <= LastCapability; cap++)
        {
            if ((ambient & (1UL << cap)) != 0)
            {
                caller.Checked($"prctl(PR_CAP_AMBIENT_RAISE, {cap})", SyscallNumber.Prctl, PrCapAmbient, PrCapAmbientRaise, (ulong)cap);
            }
        }
        if (creds.NoNewPrivs != 0)
        {
            caller.Checked("prctl(PR_SET_NO_NEW_PRIVS)", SyscallNumber.Prctl, PrSetNoNewPrivs, 1);
        }
    }

    private static uint[] Halves(ulong mask) => new[] { (uint)mask, (uint)(mask >> 32) };

    private static ulong Whole(Google.Protobuf.Collections.RepeatedField<uint> halves) =>
        (halves.Count > 0 ? halves[0] : 0) | (halves.Count > 1 ? (ulong)halves[1] << 32 : 0);
}
