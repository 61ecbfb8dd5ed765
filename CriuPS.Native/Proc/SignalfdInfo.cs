namespace CriuPS.Native.Proc;

/// <summary>A signalfd's fdinfo: "sigmask" (hex, bit N-1 for signal N).</summary>
public readonly record struct SignalfdInfo(ulong Mask)
{
    public static SignalfdInfo Of(FdInfo info) => new(AnonInodeFdInfo.Hex(info.Get("sigmask"), "sigmask"));
}
