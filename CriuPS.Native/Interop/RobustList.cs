namespace CriuPS.Native.Interop;

/// <summary>get_robust_list(2): where a thread's list of held robust futexes starts, and the size of its head.</summary>
public static unsafe class RobustList
{
    public static (ulong Head, uint Length) Get(int tid)
    {
        ulong head;
        ulong length;
        Syscall.Checked("get_robust_list", SystemCall.GetRobustList, (ulong)tid, (ulong)&head, (ulong)&length);
        return (head, (uint)length);
    }
}
