using System.Runtime.InteropServices;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Signals;

/// <summary>The disposition of every signal (sa_entry in the task core): read and set with injected rt_sigaction.</summary>
internal static class SignalHandlers
{
    [StructLayout(LayoutKind.Sequential)]
    private struct KernelSigaction
    {
        public ulong Handler;
        public ulong Flags;
        public ulong Restorer;
        public ulong Mask;
    }


    /// <summary>Bytes of struct sigaction as the kernel takes it (32 on x86-64).</summary>
    private static readonly int SigactionSize = Marshal.SizeOf<KernelSigaction>();

    /// <summary>Signals whose disposition can be changed (all but SIGKILL and SIGSTOP), in CRIU's order.</summary>
    public static IEnumerable<int> Changeable =>
        Enumerable.Range(1, Native.Interop.Signals.Count).Where(s => s is not Native.Interop.Signals.SIGKILL and not Native.Interop.Signals.SIGSTOP);

    public static void Dump(DumpedProcess process)
    {
        var scratch = process.Injection.Scratch;
        scratch.Reset();
        var signals = Changeable.ToList();
        var results = scratch.Reserve(signals.Count * SigactionSize);
        var batch = new SyscallBatch(process.Injection);
        for (int i = 0; i < signals.Count; i++)
        {
            batch.Add($"rt_sigaction({signals[i]})", RemoteCall.RtSigaction(signals[i], Address.Null, results + new ByteCount((ulong)(i * SigactionSize))));
        }
        batch.Run();
        foreach (var action in process.Memory.ReadArray<KernelSigaction>(results, signals.Count))
        {
            process.LeaderCore.Tc.Sigactions.Add(new SaEntry { Sigaction = action.Handler, Flags = action.Flags, Restorer = action.Restorer, Mask = action.Mask });
        }
    }

    public static void Restore(RestoringProcess process)
    {
        var scratch = process.Injection.Scratch;
        var saved = process.Images.LeaderCore.Tc.Sigactions;
        var signals = Changeable.ToList();
        scratch.Reset();
        var actions = new KernelSigaction[Math.Min(saved.Count, signals.Count)];
        for (int i = 0; i < actions.Length; i++)
        {
            actions[i] = new KernelSigaction { Handler = saved[i].Sigaction, Flags = saved[i].Flags, Restorer = saved[i].Restorer, Mask = saved[i].Mask };
        }
        var table = scratch.PutArray<KernelSigaction>(actions);
        var batch = new SyscallBatch(process.Injection);
        for (int i = 0; i < actions.Length; i++)
        {
            batch.Add($"rt_sigaction({signals[i]})", RemoteCall.RtSigaction(signals[i], table + new ByteCount((ulong)(i * SigactionSize)), Address.Null));
        }
        batch.Run();
    }
}
