using CriuPS.Native.Arch;

namespace CriuPS.Native.RemoteSyscall;

/// <summary>
/// One system call to inject, with its arguments as the kernel reads them from the six argument registers. The
/// engine does not build these by hand: the factories named after the calls (RemoteCalls.*.cs: descriptors, memory,
/// process, credentials, signals, mounts) take descriptors, addresses, lengths and flags and encode them, so that a
/// call reads the same whether it runs alone (<see cref="RemoteSyscaller.Checked(string, RemoteCall)"/>), in a
/// <see cref="SyscallBatch"/>, or as code a parked thread runs on its way back.
/// </summary>
public readonly partial record struct RemoteCall(SystemCall Number, ulong A1 = 0, ulong A2 = 0, ulong A3 = 0, ulong A4 = 0, ulong A5 = 0, ulong A6 = 0)
{
    /// <summary>The six arguments, in register order.</summary>
    public ulong[] Arguments => [A1, A2, A3, A4, A5, A6];

    // A call whose result is a number: a descriptor of the target, a task id.
    private static RemoteCall<int> ReturningNumber(RemoteCall call) => new(call, static result => (int)result);

    // A call whose result is an address in the target.
    private static RemoteCall<Memory.Address> ReturningAddress(RemoteCall call) => new(call, static result => new Memory.Address((ulong)result));
}

/// <summary>
/// A <see cref="RemoteCall"/> whose result is a value of its own type (a descriptor, an address):
/// <see cref="RemoteSyscaller.Checked{TResult}(string, RemoteCall{TResult})"/> returns it as such.
/// </summary>
public readonly record struct RemoteCall<TResult>(RemoteCall Call, Func<long, TResult> Result)
{
    public static implicit operator RemoteCall(RemoteCall<TResult> typed) => typed.Call;
}
