using System.Buffers.Binary;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Tests.RemoteSyscall;

/// <summary>
/// The rt_sigreturn frame a parked thread returns to itself from, laid out as the kernel reads it (struct rt_sigframe
/// of x86-64, an XSAVE area with its markers), and the signal restorer every process has.
/// </summary>
public sealed class SignalFrameTests
{
    [Fact]
    public void Holds_the_registers_mask_and_xsave_state_below_the_red_zone_as_the_kernel_reads_them()
    {
        var regs = new UserRegs { Rsp = 0x7ffd_0000_1000, Rip = 0x4011aa, Rax = 0x1111, R15 = 0x2222, Eflags = 0x246, Cs = 0x33, Ss = 0x2b };
        var xstate = new byte[2432];
        xstate[0] = 0x7f; // x87 control word: the first byte of the area
        var frame = SignalFrame.For(regs, signalMask: 0x5000, xstate, xfeatures: 0xe7);

        Assert.Equal(regs.Rsp - 128, frame.Range.End.Value); // nothing of the red zone is touched
        Assert.Equal(frame.Start.Value + 8, frame.SigreturnStack.Value); // rt_sigreturn reads the frame at rsp - 8
        var bytes = frame.Bytes;
        ulong fpstate = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(8 + 40 + 192));
        Assert.Equal(0UL, fpstate % 64); // XRSTOR's alignment
        int fp = (int)(fpstate - frame.Start.Value);
        Assert.Equal(0x7f, bytes[fp]);
        Assert.Equal(0x46505853u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(fp + 464))); // FP_XSTATE_MAGIC1
        Assert.Equal((uint)xstate.Length + 4, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(fp + 468)));
        Assert.Equal(0xe7UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(fp + 472)));
        Assert.Equal((uint)xstate.Length, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(fp + 480)));
        Assert.Equal(0x46505845u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(fp + xstate.Length))); // FP_XSTATE_MAGIC2

        var sigcontext = bytes.AsSpan(8 + 40);
        Assert.Equal(regs.R15, BinaryPrimitives.ReadUInt64LittleEndian(sigcontext[(7 * 8)..]));
        Assert.Equal(regs.Rax, BinaryPrimitives.ReadUInt64LittleEndian(sigcontext[(13 * 8)..]));
        Assert.Equal(regs.Rsp, BinaryPrimitives.ReadUInt64LittleEndian(sigcontext[(15 * 8)..]));
        Assert.Equal(regs.Rip, BinaryPrimitives.ReadUInt64LittleEndian(sigcontext[(16 * 8)..]));
        Assert.Equal((ushort)0x2b, BinaryPrimitives.ReadUInt16LittleEndian(sigcontext[150..]));
        Assert.Equal(0x5000UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(8 + 40 + 256))); // uc_sigmask
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8 + 16 + 8))); // an altstack mode the kernel ignores
    }

    [Fact]
    public void Finds_the_C_librarys_signal_restorer_in_this_process()
    {
        using var memory = ProcessMemory.Open(Environment.ProcessId);
        var vmas = SmapsParser.ReadMaps(Environment.ProcessId);
        var restorer = SignalRestorer.Find(vmas, memory);

        Assert.NotNull(restorer);
        Assert.Contains(vmas, v => v.Range.Contains(restorer.Value) && v.Executable && v.Path.Contains("libc", StringComparison.Ordinal));
        var code = memory.Read(restorer.Value, 9);
        Assert.Equal(new byte[] { 0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05 }, code); // mov $15, %rax; syscall
        Assert.Equal(7, SignalRestorer.SyscallOffset(memory, restorer.Value));
    }

    [Fact]
    public void A_restorer_is_in_place_only_where_its_instructions_are()
    {
        using var memory = ProcessMemory.Open(Environment.ProcessId);
        var vmas = SmapsParser.ReadMaps(Environment.ProcessId);
        var restorer = SignalRestorer.Find(vmas, memory)!.Value;

        Assert.True(SignalRestorer.IsAt(memory, restorer));
        Assert.False(SignalRestorer.IsAt(memory, restorer + new ByteCount(1)));
        // an address nothing is mapped at (the page below the lowest area): a layout read ahead that no longer holds
        var unmapped = new Address(vmas.Min(v => v.Start.Value) - 4096);
        Assert.False(SignalRestorer.IsAt(memory, unmapped));
    }
}
