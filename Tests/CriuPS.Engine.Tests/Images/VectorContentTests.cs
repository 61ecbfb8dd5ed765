using System.Text;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;

namespace CriuPS.Engine.Tests.Images;

/// <summary>What CRIU recorded about the counter process, as shared/interop/README.md describes it.</summary>
public sealed class VectorContentTests
{
    private const uint VmaAreaVdso = 1 << 3;        // criu/include/image.h
    private const uint VmaAreaVvar = 1 << 12;
    private const uint PagemapPresent = 1 << 2;     // PE_PRESENT: the data is in the pages file
    private const uint OAppend = 0x400;
    private const int SigKill = 9, SigUsr1 = 10, SigUsr2 = 12, SigTerm = 15, SigStop = 19;
    private const int PageSize = 4096;

    [Theory]
    [InlineData(InteropVector.StaticName)]
    [InlineData(InteropVector.DynamicName)]
    public void PstreeHoldsTheDumpedProcessAlone(string vectorName)
    {
        InteropVector vector = InteropVector.Get(vectorName);

        PstreeEntry entry = ImageReader.ReadSingle<PstreeEntry>(vector.ImagesDirectory, ImageTypes.Pstree, null);

        Assert.Equal((uint)vector.Pid, entry.Pid);
        Assert.Equal((uint)vector.Pid, entry.Pgid);
        Assert.Equal((uint)vector.Pid, entry.Sid);
        Assert.Equal(new[] { (uint)vector.Pid }, entry.Threads);
    }

    [Theory]
    [InlineData(InteropVector.StaticName)]
    [InlineData(InteropVector.DynamicName)]
    public void PipesDataHoldsTheUnreadBytes(string vectorName)
    {
        IReadOnlyList<ImageEntry> entries = ImageReader.ReadAll(InteropVector.Get(vectorName).PathOf("pipes-data.img"));

        ImageEntry entry = Assert.Single(entries);
        Assert.Equal(11u, ((PipeDataEntry)entry.Message).Bytes);
        Assert.Equal("hello pipe\n", Encoding.ASCII.GetString(entry.Payload!));
    }

    [Theory]
    [InlineData(InteropVector.StaticName)]
    [InlineData(InteropVector.DynamicName)]
    public void CoreDescribesAnX8664LeaderWithItsSignalSetup(string vectorName)
    {
        InteropVector vector = InteropVector.Get(vectorName);

        CoreEntry core = ImageReader.ReadSingle<CoreEntry>(vector.ImagesDirectory, ImageTypes.Core, vector.PidText);

        Assert.Equal(CoreEntry.Types.March.X8664, core.Mtype);
        Assert.Equal(vector.Name, core.Tc.Comm);
        Assert.Equal(vector.Name, core.ThreadCore.Comm);
        Assert.NotNull(core.ThreadInfo.Gpregs);
        // One disposition per signal 1..64, SIGKILL and SIGSTOP left out.
        Assert.Equal(62, core.Tc.Sigactions.Count);
        Assert.NotEqual(0ul, core.Tc.Sigactions[SigactionIndex(SigUsr1)].Sigaction);
        Assert.NotEqual(0ul, core.Tc.Sigactions[SigactionIndex(SigTerm)].Sigaction);
        Assert.Equal(1ul << (SigUsr2 - 1), core.Tc.BlkSigset);
    }

    [Theory]
    [InlineData(InteropVector.StaticName)]
    [InlineData(InteropVector.DynamicName)]
    public void MmFlagsTheVdsoAndVvarMappings(string vectorName)
    {
        InteropVector vector = InteropVector.Get(vectorName);

        MmEntry mm = ImageReader.ReadSingle<MmEntry>(vector.ImagesDirectory, ImageTypes.Mm, vector.PidText);

        Assert.True(mm.Vmas.Count > 10);
        Assert.Single(mm.Vmas, vma => (vma.Status & VmaAreaVdso) != 0);
        Assert.Single(mm.Vmas, vma => (vma.Status & VmaAreaVvar) != 0);
        Assert.All(mm.Vmas, vma => Assert.True(vma.Start < vma.End && vma.Start % PageSize == 0 && vma.End % PageSize == 0));
    }

    [Theory]
    [InlineData(InteropVector.StaticName)]
    [InlineData(InteropVector.DynamicName)]
    public void PagemapAccountsForEveryByteOfThePagesFile(string vectorName)
    {
        InteropVector vector = InteropVector.Get(vectorName);
        MmEntry mm = ImageReader.ReadSingle<MmEntry>(vector.ImagesDirectory, ImageTypes.Mm, vector.PidText);

        using ImageReader reader = ImageReader.Open(vector.PathOf(ImageTypes.Pagemap.FileName(vector.PidText)));
        PagemapHead head = reader.ReadEntry<PagemapHead>()!;
        var runs = new List<PagemapEntry>();
        while (reader.TryReadEntry(out PagemapEntry? run))
            runs.Add(run);

        Assert.Equal(1u, head.PagesId);
        Assert.NotEmpty(runs);
        long presentBytes = runs.Where(r => (r.Flags & PagemapPresent) != 0).Sum(r => (long)r.NrPages * PageSize);
        Assert.Equal(new FileInfo(vector.PathOf(ImageTypes.Pages.FileName(head.PagesId))).Length, presentBytes);
        // A run may span adjacent VMAs, but each of its pages lies in one.
        Assert.All(runs.SelectMany(run => Enumerable.Range(0, (int)run.NrPages).Select(i => run.Vaddr + (ulong)i * PageSize)),
            page => Assert.Contains(mm.Vmas, vma => vma.Start <= page && page < vma.End));
    }

    [Theory]
    [InlineData(InteropVector.StaticName)]
    [InlineData(InteropVector.DynamicName)]
    public void Fd3IsTheLogFileOpenForAppending(string vectorName)
    {
        InteropVector vector = InteropVector.Get(vectorName);
        IEnumerable<FdinfoEntry> fds = ImageReader.ReadAll(vector.PathOf("fdinfo-2.img")).Select(e => (FdinfoEntry)e.Message);
        IEnumerable<FileEntry> files = ImageReader.ReadAll(vector.PathOf("files.img")).Select(e => (FileEntry)e.Message);

        FdinfoEntry fd3 = Assert.Single(fds, fd => fd.Fd == 3);
        FileEntry file = Assert.Single(files, f => f.Id == fd3.Id);

        Assert.Equal(FdTypes.Reg, fd3.Type);
        Assert.Equal(FdTypes.Reg, file.Type);
        Assert.EndsWith("/" + vector.LogFileName, file.Reg.Name, StringComparison.Ordinal);
        Assert.Equal(OAppend, file.Reg.Flags & OAppend);
    }

    // CRIU stores dispositions for signals 1..64 in order, skipping the two that cannot be caught.
    private static int SigactionIndex(int signal) =>
        signal - 1 - (signal > SigKill ? 1 : 0) - (signal > SigStop ? 1 : 0);
}
