namespace CriuPS.Native.Proc;

/// <summary>An eventfd's fdinfo: "eventfd-count" (hex) and "eventfd-semaphore" (Linux 6.7+; absent means no).</summary>
public readonly record struct EventfdInfo(ulong Counter, bool Semaphore)
{
    public static EventfdInfo Of(FdInfo info) =>
        new(AnonInodeFdInfo.Hex(info.Get("eventfd-count"), "eventfd-count"), info.Get("eventfd-semaphore") == "1");
}
