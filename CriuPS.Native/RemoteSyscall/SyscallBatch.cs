using System.Runtime.InteropServices;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Native.RemoteSyscall;

/// <summary>
/// Many injected system calls for the price of one stop. Each stop of a traced thread costs two context switches,
/// which on a busy machine outweigh the calls themselves (mapping 10,000 areas one call at a time took seconds).
/// A batch lays its calls down in the scratch area as straight-line code — load the six argument registers,
/// `syscall`, store rax into a result slot, and jump to the end at the first error — and runs it in one go. The end is
/// the caller's: an int3 in a process of ours, the stop of a parked thread in a process we must not harm.
/// The code makes no decision of its own beyond stopping at an error: it is the calls the engine chose, in order.
/// </summary>
public sealed class SyscallBatch
{
    private static readonly IArchitecture Arch = IArchitecture.Current;
    private static readonly int CallCodeBytes = Arch.BatchedCallLength;

    // Room a run needs beyond its calls' code and result slots: the code that ends it and two 16-byte alignments.
    private const int RunOverheadBytes = 128;

    /// <summary>Never a system call's result: marks a slot whose call did not run.</summary>
    private const long NotRun = long.MinValue;

    private readonly ScratchArea scratch;
    private readonly RemoteSyscaller caller;
    // The calls as values: a restore of 10,000 areas queues 15,000 of them, and an array of arguments and a closure
    // for each came to 7 MiB of the step's allocations.
    private readonly List<(CallName What, RemoteCall Call)> calls;

    /// <summary>A batch for the thread the injection started in, with room for <paramref name="capacity"/> calls.</summary>
    public SyscallBatch(Injection injection, int capacity = 0)
        : this(injection.Scratch, injection.Caller, capacity)
    {
    }

    /// <summary>A batch for any stopped thread of the process that holds <paramref name="scratch"/>.</summary>
    public SyscallBatch(ScratchArea scratch, RemoteSyscaller caller, int capacity = 0)
    {
        this.scratch = scratch;
        this.caller = caller;
        calls = new(capacity);
    }

    public int Count => calls.Count;

    /// <summary>Queues a call; <paramref name="what"/> names it in the error if it fails. Returns its index.</summary>
    public int Add(string what, SystemCall number, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0, ulong a5 = 0, ulong a6 = 0) =>
        Add(new CallName(what, null, null), new RemoteCall(number, a1, a2, a3, a4, a5, a6));

    /// <summary>Queues a call whose description is only made if it fails (batches run to thousands of calls).</summary>
    public int Add(Func<string> what, SystemCall number, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0, ulong a5 = 0, ulong a6 = 0) =>
        Add(new CallName(null, what, null), new RemoteCall(number, a1, a2, a3, a4, a5, a6));

    /// <summary>Queues a typed call; <paramref name="what"/> names it in the error if it fails. Returns its index.</summary>
    public int Add(string what, RemoteCall call) => Add(new CallName(what, null, null), call);

    /// <summary>Queues a typed call whose description is only made if it fails. Returns its index.</summary>
    public int Add(Func<string> what, RemoteCall call) => Add(new CallName(null, what, null), call);

    /// <summary>Queues a typed call on an address range, named "<paramref name="name"/> of the range" if it fails.</summary>
    public int Add(string name, AddressRange range, RemoteCall call) => Add(new CallName(name, null, range), call);

    private int Add(CallName what, RemoteCall call)
    {
        calls.Add((what, call));
        return calls.Count - 1;
    }

    /// <summary>
    /// Runs every queued call in order and returns their results. Throws a <see cref="NativeException"/> naming
    /// the first call that failed; the calls after it did not run. Data the calls point to must already be in the
    /// scratch area: the batch takes its room after it, so nothing placed before is overwritten.
    /// </summary>
    public long[] Run()
    {
        var results = new long[calls.Count];
        var mark = scratch.Mark();
        try
        {
            // As many calls per run as the scratch area holds (a dump's area takes hundreds, a restore's thousands):
            // every run is a stop and a resume, which cost most on a busy machine.
            int perRun = (int)Math.Min(int.MaxValue, (scratch.Free - Math.Min(scratch.Free, RunOverheadBytes)) / (ulong)(CallCodeBytes + sizeof(long)));
            if (perRun == 0)
            {
                throw new InvalidOperationException($"the scratch area of {caller.Thread} has no room left for a batch of calls");
            }
            for (int first = 0; first < calls.Count; first += perRun)
            {
                int count = Math.Min(perRun, calls.Count - first);
                RunChunk(first, count, results.AsSpan(first, count));
                scratch.Rewind(mark);
            }
        }
        finally
        {
            calls.Clear();
        }
        return results;
    }

    /// <summary>
    /// Runs batches of several threads of one process at once, each in its own thread (their callers), sharing the
    /// process's scratch area: every thread is let go into its calls before the first is waited for, so that the
    /// threads wait for the scheduler side by side (64 threads of a restore, a stop each, one after the other took
    /// 10 ms here). Each batch must fit the area in one run, beside the others; else they run one after the other.
    /// Returns each batch's results; throws as <see cref="Run"/> for the first batch, in order, that failed.
    /// </summary>
    public static long[][] RunTogether(IReadOnlyList<SyscallBatch> batches)
    {
        if (batches.Count == 0)
        {
            return [];
        }
        var scratch = batches[0].scratch;
        if (batches.Any(b => b.scratch != scratch))
        {
            throw new ArgumentException("batches run together share one process's scratch area", nameof(batches));
        }
        ulong needed = (ulong)batches.Sum(b => (long)b.calls.Count * (CallCodeBytes + sizeof(long)) + RunOverheadBytes);
        if (needed > scratch.Free || batches.Any(b => !b.caller.RunsCodeTogether))
        {
            return batches.Select(b => b.Run()).ToArray();
        }
        var mark = scratch.Mark();
        try
        {
            var laid = batches.Select(b => b.LayDown(0, b.calls.Count)).ToList();
            RemoteSyscaller.RunCodeTogether(laid.Select(l => (l.Batch.caller, l.Code, l.Trap, l.Batch.calls.Count)).ToList());
            return laid.Select(l => l.Batch.TakeResults(l, 0)).ToArray();
        }
        finally
        {
            scratch.Rewind(mark);
            foreach (var batch in batches)
            {
                batch.calls.Clear();
            }
        }
    }

    private void RunChunk(int first, int count, Span<long> results)
    {
        var laid = LayDown(first, count);
        caller.RunCode(laid.Code, laid.Trap, count);
        TakeResults(laid, first).CopyTo(results);
    }

    // The code of `count` calls from `first` on, and their result slots (each marked not run), in the scratch area.
    private Laid LayDown(int first, int count)
    {
        var resultSlots = scratch.Reserve(count * sizeof(long));
        var end = caller.EncodeEnd();
        var code = new byte[count * CallCodeBytes + end.Length];
        var codeAddress = scratch.Reserve(code.Length);
        var trap = codeAddress + new ByteCount((ulong)(count * CallCodeBytes));
        for (int i = 0; i < count; i++)
        {
            var call = calls[first + i].Call;
            var slot = resultSlots + new ByteCount((ulong)(i * sizeof(long)));
            var at = codeAddress + new ByteCount((ulong)(i * CallCodeBytes));
            Arch.EncodeBatchedCall(code.AsSpan(i * CallCodeBytes, CallCodeBytes), at.Value, trap.Value, call.Number,
                [call.A1, call.A2, call.A3, call.A4, call.A5, call.A6], slot.Value);
        }
        end.CopyTo(code, count * CallCodeBytes);

        var notRun = new long[count];
        notRun.AsSpan().Fill(NotRun);
        scratch.Memory.Write(resultSlots, MemoryMarshal.AsBytes(notRun.AsSpan()));
        scratch.Memory.Write(codeAddress, code);
        return new Laid(this, resultSlots, codeAddress, trap, count);
    }

    // Once the code has run: its results, or the failure of the first call that failed (or did not run).
    private long[] TakeResults(Laid laid, int first)
    {
        var results = new long[laid.Count];
        scratch.Memory.Read(laid.Results, MemoryMarshal.AsBytes(results.AsSpan()));
        for (int i = 0; i < laid.Count; i++)
        {
            long result = results[i];
            if (result == NotRun)
            {
                throw new InvalidOperationException($"a batch of injected calls in {caller.Thread} ended before {calls[first + i].What}");
            }
            if (result < 0 && result > -4096)
            {
                throw new NativeException($"{calls[first + i].What} in {caller.Thread.ProcessId}", (int)-result);
            }
        }
        return results;
    }

    private readonly record struct Laid(SyscallBatch Batch, Address Results, Address Code, Address Trap, int Count);

    // How a failed call is named: a text, a function that makes one, or a call's name and the range it acts on.
    private readonly record struct CallName(string? Text, Func<string>? Make, AddressRange? Range)
    {
        public override string ToString() => Make?.Invoke() ?? (Range is { } range ? $"{Text} of {range}" : Text!);
    }
}
