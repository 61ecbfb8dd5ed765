using System.Text;
using CriuPS.Native.Proc;
using Xunit;

namespace CriuPS.Engine.Tests.Native;

/// <summary>ProcFiles.ReadLines hands over every line whole, whichever read of its 64 KiB buffer it straddles.</summary>
public class ProcFilesReadLinesTests
{
    [Theory]
    [InlineData(10, 7)]          // one read
    [InlineData(20_000, 37)]     // lines across many reads and buffer boundaries
    [InlineData(3, 150_000)]     // lines longer than the buffer
    public void EveryLineComesWholeAndInOrder(int count, int width)
    {
        var lines = Enumerable.Range(0, count).Select(i => $"{i}:" + new string((char)('a' + i % 26), width + i % 5)).ToList();
        string path = Path.GetTempFileName();
        try
        {
            // the last line without its newline, as a file may end
            File.WriteAllText(path, string.Join('\n', lines));
            var read = new List<string>();
            ProcFiles.ReadLines(path, line => read.Add(Encoding.UTF8.GetString(line)));
            Assert.Equal(lines, read);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void SmapsReadLineByLineIsSmapsParsedWhole()
    {
        // a process that sleeps: its areas stay as they are between the reads
        using var sleeper = TestProcess.StartSleeper();
        var byLines = SmapsParser.Read(sleeper.Pid);
        var whole = SmapsParser.Parse(File.ReadAllBytes($"/proc/{sleeper.Pid}/smaps"));
        Assert.NotEmpty(byLines);
        Assert.Equal(whole.Select(a => (a.ToString(), a.VmFlags.ToString(), a.KernelPageSize)), byLines.Select(a => (a.ToString(), a.VmFlags.ToString(), a.KernelPageSize)));
    }

    [Fact]
    public void AMissingFileIsNotFound() =>
        Assert.Throws<FileNotFoundException>(() => ProcFiles.ReadLines("/proc/0/smaps", _ => { }));
}
