namespace CriuPS.Engine.Tests.Arch;

/// <summary>
/// The code the injection layer lays down, encoded through <see cref="IArchitecture"/>: byte for byte what the
/// injection layer encoded itself with X86Code before the encoders moved behind the interface (captured from that
/// code), so that the move changed no instruction.
/// </summary>
public class InjectedCodeTests
{
    private static readonly IArchitecture X86 = X86_64Architecture.Instance;
    private const ulong Stack = 0x7ffd00001000, ReturnPoint = 0x7f1234567890;

    [Fact]
    public void ABatchedCallLoadsTheCallStoresItsResultAndJumpsToTheTrapOnAnError()
    {
        var code = new byte[X86.BatchedCallLength];
        X86.EncodeBatchedCall(code, at: 0x7f0000001000, trap: 0x7f0000002000, SystemCall.Mmap, [1, 2, 3, 4, 5, 6], slot: 0x7f0000000800);
        Assert.Equal(
            "48B80900000000000000" + "48BF0100000000000000" + "48BE0200000000000000" + "48BA0300000000000000"
            + "49BA0400000000000000" + "49B80500000000000000" + "49B90600000000000000" + "0F05"
            + "48A300080000007F0000" + "483D01F0FFFF" + "0F83A20F0000",
            Convert.ToHexString(code));
    }

    [Fact]
    public void MissingArgumentsOfABatchedCallAreZero()
    {
        var given = new byte[X86.BatchedCallLength];
        var zeros = new byte[X86.BatchedCallLength];
        X86.EncodeBatchedCall(given, 0x1000, 0x2000, SystemCall.Close, [3], 0x800);
        X86.EncodeBatchedCall(zeros, 0x1000, 0x2000, SystemCall.Close, [3, 0, 0, 0, 0, 0], 0x800);
        Assert.Equal(zeros, given);
    }

    [Fact]
    public void AParkedThreadsEndStopsThenReturnsThroughItsFrame()
    {
        var code = X86.EncodeStopThenReturn(1234, 1235, 10, Stack, ReturnPoint);
        Assert.Equal(
            "B8EA000000" + "48BFD204000000000000" + "48BED304000000000000" + "48BA0A00000000000000" + "0F05"
            + "48BC00100000FD7F0000" + "48B890785634127F0000" + "FFE0",
            Convert.ToHexString(code));
        Assert.Equal(37, X86.StopExitOffset); // just past the tgkill's syscall
    }

    [Fact]
    public void TheWayBackMakesItsCallsThenReturnsThroughTheFrame()
    {
        var code = X86.EncodeCallsThenReturn([(SystemCall.Setsockopt, [3, 6, 19, 0x7f0000003000, 4]), (SystemCall.Close, [3])], Stack, ReturnPoint);
        Assert.Equal(
            "48B83600000000000000" + "48BF0300000000000000" + "48BE0600000000000000" + "48BA1300000000000000"
            + "49BA00300000007F0000" + "49B80400000000000000" + "49B90000000000000000" + "0F05"
            + "48B80300000000000000" + "48BF0300000000000000" + "48BE0000000000000000" + "48BA0000000000000000"
            + "49BA0000000000000000" + "49B80000000000000000" + "49B90000000000000000" + "0F05"
            + "48BC00100000FD7F0000" + "48B890785634127F0000" + "FFE0",
            Convert.ToHexString(code));
    }

    [Fact]
    public void TheCloseOfAResultTakesTheResultAsItsDescriptor()
    {
        Assert.Equal("4889C7" + "B803000000" + "0F05", Convert.ToHexString(X86.EncodeCloseOfResult()));
        Assert.Equal("CC", Convert.ToHexString(X86.Breakpoint));
    }
}
