using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Restore.Checks;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Tests.Images;

/// <summary>
/// Values no checkpoint writes (the damage image fuzzing made: repeated ids, areas and runs out of place, absurd sizes)
/// are ImageCorrupt naming the file and the entry, before a restore creates anything.
/// </summary>
public sealed class ImageValueChecksTests
{
    private const string Mm = "/img/mm-10.img";
    private const string Pagemap = "/img/pagemap-10.img";
    private const ulong Page = 4096;

    private static VmaEntry Area(ulong start, ulong end, VmaStatus status = VmaStatus.Regular | VmaStatus.AnonPrivate) => new()
    {
        Start = start, End = end, Prot = (uint)(Mman.PROT_READ | Mman.PROT_WRITE), Flags = (uint)(Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS), Status = (uint)status, Shmid = 0,
    };

    private static MmEntry Memory(params VmaEntry[] areas)
    {
        var mm = new MmEntry
        {
            MmStartCode = 0x400000, MmEndCode = 0x401000, MmStartData = 0x402000, MmEndData = 0x403000,
            MmStartBrk = 0x404000, MmBrk = 0x405000, MmStartStack = 0x7ffd0000, MmArgStart = 0x7ffd1000, MmArgEnd = 0x7ffd1010,
            MmEnvStart = 0x7ffd1010, MmEnvEnd = 0x7ffd1020, ExeFileId = 1,
        };
        mm.MmSavedAuxv.Add([6, 4096, 0, 0]);
        mm.Vmas.Add(areas);
        return mm;
    }

    private static PagemapEntry Run(ulong address, uint pages) => new() { Vaddr = address, NrPages = pages, Flags = (uint)PagemapFlags.Present };

    private static CheckpointException Refused(Action check)
    {
        var e = Assert.Throws<CheckpointException>(check);
        Assert.Equal(CheckpointErrorKind.ImageCorrupt, e.Kind);
        return e;
    }

    [Fact]
    public void AWellFormedAddressSpaceAndItsRunsPass()
    {
        var mm = Memory(Area(0x400000, 0x402000), Area(0x402000, 0x404000), Area(0x7ffd0000, 0x7ffd2000, VmaStatus.Regular | VmaStatus.Stack | VmaStatus.AnonPrivate));

        AddressSpaceChecks.Check(Mm, mm);
        // A run may span areas that follow one another without a gap.
        PagemapChecks.Check(Pagemap, [Run(0x401000, 2), Run(0x7ffd0000, 2)], mm.Vmas, Mm);
    }

    [Theory]
    [InlineData(0x402000UL, 0x402000UL, "vmas[1] (402000-402000): the area ends where it starts or before")]
    [InlineData(0x402800UL, 0x403000UL, "vmas[1] (402800-403000): the area does not start and end on page boundaries")]
    [InlineData(0x401000UL, 0x403000UL, "vmas[1] (401000-403000): the area overlaps or comes before vmas[0]")]
    [InlineData(0x7ffffffff000UL, 0x800000001000UL, "the area ends beyond the user address space")]
    public void AreasOutOfPlaceAreNamed(ulong start, ulong end, string problem)
    {
        var e = Refused(() => AddressSpaceChecks.Check(Mm, Memory(Area(0x400000, 0x402000), Area(start, end))));

        Assert.Equal(Mm, e.Target);
        Assert.StartsWith($"{Mm}: entries[0].", e.Message, StringComparison.Ordinal);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AFileMappingWhoseStatusNamesNoFileIsNamed()
    {
        // The fuzzer's status 2 on a private file mapping: the restore had no file to map (EBADF, RestoreFailed).
        var area = Area(0x402000, 0x404000, VmaStatus.Stack);
        area.Flags = (uint)Mman.MAP_PRIVATE;

        var e = Refused(() => AddressSpaceChecks.Check(Mm, Memory(Area(0x400000, 0x402000), area)));

        Assert.Contains("entries[0].vmas[1] (402000-404000): flags 0x2 map a file (no MAP_ANONYMOUS), but status 0x2 names no file, socket or System V shared memory mapping", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ADroppableAreaAndAPacketSocketsRingPass()
    {
        // What real checkpoints hold: MAP_DROPPABLE (a mapping type of its own since Linux 6.11, anonymous only) and a
        // packet socket's ring, a shared mapping of the socket (VMA_AREA_SOCKET, no file).
        var droppable = Area(0x402000, 0x404000);
        droppable.Flags = (uint)(Mman.MAP_DROPPABLE | Mman.MAP_ANONYMOUS | Mman.MAP_NORESERVE);
        var ring = Area(0x404000, 0x406000, VmaStatus.Regular | VmaStatus.Socket);
        ring.Flags = (uint)Mman.MAP_SHARED;

        AddressSpaceChecks.Check(Mm, Memory(Area(0x400000, 0x402000), droppable, ring));

        droppable.Flags = (uint)Mman.MAP_DROPPABLE;
        var e = Refused(() => AddressSpaceChecks.Check(Mm, Memory(Area(0x400000, 0x402000), droppable)));
        Assert.Contains("flags 0x8 are no mapping's", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0x00200000UL, 0x00600000UL, 21U << 26, null)] // MAP_HUGE_2MB, on 2 MiB boundaries: what a checkpoint writes
    [InlineData(0x00200000UL, 0x00600000UL, 0U, null)] // no size bits: the default huge page size
    [InlineData(0x00201000UL, 0x00600000UL, 21U << 26, "does not start and end on their boundaries")]
    [InlineData(0x00200000UL, 0x00600000UL, 2U << 26, "ask for pages of 2^2 bytes")]
    [InlineData(0x00200000UL, 0x00600000UL, 63U << 26, "ask for pages of 2^63 bytes")]
    public void HugetlbAreasPassWithTheirPageSizeAndDamagedOnesAreNamed(ulong start, ulong end, uint sizeBits, string? problem)
    {
        var area = Area(start, end);
        area.Flags = (uint)(Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS | Mman.MAP_HUGETLB) | sizeBits;
        var mm = Memory(Area(0x100000, 0x102000), area);
        if (problem is null)
        {
            AddressSpaceChecks.Check(Mm, mm);
            return;
        }
        var e = Refused(() => AddressSpaceChecks.Check(Mm, mm));
        Assert.Contains($"entries[0].vmas[1] ({start:x}-{end:x})", e.Message, StringComparison.Ordinal);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HugePageSizeBitsWithoutMapHugetlbAreNamed()
    {
        var area = Area(0x200000, 0x400000);
        area.Flags = (uint)(Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS) | (21U << 26);
        var e = Refused(() => AddressSpaceChecks.Check(Mm, Memory(Area(0x100000, 0x102000), area)));
        Assert.Contains("are not MAP_HUGETLB with the size bits of a page size", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0x54000004U, 4U, null)] // MFD_HUGETLB | MFD_HUGE_2MB, as CRIU writes a memfd's
    [InlineData(0x54000800U, 0x800U, null)] // SHM_HUGETLB | SHM_HUGE_2MB, a segment's
    [InlineData(4U, 4U, null)] // the default size
    [InlineData(0x54000000U, 4U, "are not MFD_HUGETLB with the size bits")]
    [InlineData(0x54000005U, 4U, "are not MFD_HUGETLB with the size bits")]
    [InlineData(0x04000004U, 4U, "2^1 bytes")]
    public void HugetlbFlagsOfMemfdsAndSegmentsAreChecked(uint flags, uint flag, string? problem)
    {
        var found = HugetlbMemory.FlagsProblem(flags, flag, flag == 4 ? "MFD_HUGETLB" : "SHM_HUGETLB");
        if (problem is null)
        {
            Assert.Null(found);
        }
        else
        {
            Assert.Contains(problem, found, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void AGroupWhoseLeaderExitedPassesAndOneNamedByAThreadIsNamed()
    {
        // A zombie's group led by a process gone since: the restore makes it again with a stand-in of that PID.
        var tree = new List<PstreeEntry>
        {
            new() { Pid = 100, Ppid = 1, Pgid = 100, Sid = 100, Threads = { 100, 101 } },
            new() { Pid = 110, Ppid = 100, Pgid = 105, Sid = 100, Threads = { 110 } },
        };
        TreeChecks.Check("/img/pstree.img", tree);

        tree[1].Pgid = 101;
        var e = Refused(() => TreeChecks.Check("/img/pstree.img", tree));
        Assert.Contains("entries[1] (pid 110): its process group 101 is the id of entries[0] (pid 100).threads[1], a thread, which leads no process group.", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ASoftLimitAboveItsHardLimitIsNamed()
    {
        // The fuzzer's rlimits[12].max one below its cur: prlimit64 said EINVAL (RestoreFailed, naming no file).
        var core = new CoreEntry { Mtype = CoreEntry.Types.March.X8664, Tc = new TaskCoreEntry { TaskState = 1, Rlimits = new TaskRlimitsEntry() } };
        core.Tc.Rlimits.Rlimits.Add(new RlimitEntry { Cur = 10, Max = 20 });
        core.Tc.Rlimits.Rlimits.Add(new RlimitEntry { Cur = 819200, Max = 819199 });

        var e = Refused(() => CoreChecks.CheckProcess("/img/core-10.img", core));

        Assert.Equal("/img/core-10.img: entries[0].tc.rlimits.rlimits[1]: the soft limit 819200 is above the hard limit 819199; a process's limits never are.", e.Message);
    }

    [Fact]
    public void ACapabilitySetCutShortIsDamageNotAMissingPrivilege()
    {
        // The fuzzer's cap_prm[0] removed: the high word became the low one, and capset said EPERM (InsufficientPrivilege).
        var creds = new CredsEntry();
        foreach (var set in new[] { creds.CapInh, creds.CapEff, creds.CapBnd })
        {
            set.Add([0xffffffff, 0x1ff]);
        }
        creds.CapPrm.Add(0x1ff);
        var core = new CoreEntry { Mtype = CoreEntry.Types.March.X8664, ThreadInfo = new ThreadInfoX86(), ThreadCore = new ThreadCoreEntry { Creds = creds } };

        var e = Refused(() => CoreChecks.CheckThread("/img/core-10.img", core));

        Assert.Equal("/img/core-10.img: entries[0].thread_core.creds.cap_prm has 1 words; a capability set has 2.", e.Message);
    }

    [Fact]
    public void AnAbsurdVdsoDataSizeIsDamageNotAnotherKernel()
    {
        // The fuzzer's "vDSO data 18014261965817304 KiB": an end moved far up, still page-aligned and below TASK_SIZE.
        var e = Refused(() => AddressSpaceChecks.Check(Mm, Memory(Area(0x400000, 0x402000), Area(0x7f0000000000, 0x7ff000000000, VmaStatus.Regular | VmaStatus.Vvar))));

        Assert.Contains("entries[0].vmas[1] (7f0000000000-7ff000000000): the vDSO's data takes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TwoVdsosAreDamage()
    {
        var e = Refused(() => AddressSpaceChecks.Check(Mm, Memory(
            Area(0x7f0000000000, 0x7f0000002000, VmaStatus.Regular | VmaStatus.Vdso), Area(0x7f0000004000, 0x7f0000006000, VmaStatus.Regular | VmaStatus.Vdso))));

        Assert.Contains("vmas[0] is the vDSO already", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MmFieldsOutOfOrderAndAnAuxvCutShortAreNamed()
    {
        var mm = Memory(Area(0x400000, 0x402000));
        mm.MmEndCode = mm.MmStartCode;
        Assert.Contains("entries[0].mm_end_code (0x400000) is not above entries[0].mm_start_code", Refused(() => AddressSpaceChecks.Check(Mm, mm)).Message, StringComparison.Ordinal);

        mm = Memory(Area(0x400000, 0x402000));
        mm.MmBrk = ulong.MaxValue;
        Assert.Contains("entries[0].mm_brk is 0xffffffffffffffff, outside the user address space", Refused(() => AddressSpaceChecks.Check(Mm, mm)).Message, StringComparison.Ordinal);

        mm = Memory(Area(0x400000, 0x402000));
        mm.MmSavedAuxv.RemoveAt(3);
        Assert.Contains("entries[0].mm_saved_auxv has 3 words", Refused(() => AddressSpaceChecks.Check(Mm, mm)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0x500000UL, 1u, "entries[2] (500000, 1 pages): pages at 500000-501000 are in no memory area of mm-10.img")]
    [InlineData(0x401000UL, 2u, "entries[2] (401000, 2 pages): pages at 402000-403000 are in no memory area")]
    [InlineData(0x400000UL, 1u, "entries[2] (400000, 1 pages): the run overlaps or comes before entries[1]")]
    [InlineData(0x401000UL, 0u, "entries[2] (401000, 0 pages): the run has no pages")]
    [InlineData(0x401000UL, uint.MaxValue, "pages at 402000-100000400000 are in no memory area")]
    public void RunsOutOfPlaceAreNamed(ulong address, uint pages, string problem)
    {
        var mm = Memory(Area(0x400000, 0x402000));

        var e = Refused(() => PagemapChecks.Check(Pagemap, [Run(0x400000, 1), Run(address, pages)], mm.Vmas, Mm));

        Assert.Equal(Pagemap, e.Target);
        Assert.True(e.Message.Contains(problem, StringComparison.Ordinal), e.Message);
    }

    [Fact]
    public void ARunCountTooLargeToAddUpIsRefusedBeforeItWraps()
    {
        var mm = Memory(Area(0x400000, 0x402000));
        var run = new PagemapEntry { Vaddr = 0x400000, CompatNrPages = uint.MaxValue, Flags = (uint)PagemapFlags.Present };
        run.NrPages = ulong.MaxValue >> 1; // nr_pages wins over the compatibility field, as in CRIU

        Assert.Contains("beyond the user address space", Refused(() => PagemapChecks.Check(Pagemap, [run], mm.Vmas, Mm)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RepeatedPidsAndThreadIdsAreNamed()
    {
        const string Tree = "/img/pstree.img";
        PstreeEntry Process(uint pid, uint ppid, params uint[] threads)
        {
            var p = new PstreeEntry { Pid = pid, Ppid = ppid, Pgid = 10, Sid = 10 };
            p.Threads.Add(threads);
            return p;
        }

        var e = Refused(() => TreeChecks.Check(Tree, [Process(10, 1, 10), Process(10, 10, 10)]));
        Assert.Contains("entries[0] (pid 10) and entries[1] (pid 10) have the same pid, 10", e.Message, StringComparison.Ordinal);

        e = Refused(() => TreeChecks.Check(Tree, [Process(10, 1, 10, 11), Process(12, 10, 12, 11)]));
        Assert.Contains("entries[0] (pid 10).threads[1] and entries[1] (pid 12).threads[1] have the same id, 11", e.Message, StringComparison.Ordinal);

        e = Refused(() => TreeChecks.Check(Tree, [Process(10, 1, 10), Process(12, 13, 12), Process(13, 10, 13)]));
        Assert.Contains("entries[1] (pid 12): its parent 13 is no process listed before it", e.Message, StringComparison.Ordinal);

        e = Refused(() => TreeChecks.Check(Tree, [Process(10, 1, 10), Process(5_000_000, 10, 5_000_000)]));
        Assert.Contains("pid 5000000 is outside Linux's range", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PidNamespaceLevelsOutOfShapeAreNamed()
    {
        const string Tree = "/img/pstree.img";
        PstreeEntry Process(uint pid, uint ppid, uint[] levels, params uint[] threads)
        {
            var p = new PstreeEntry { Pid = pid, Ppid = ppid, Pgid = 10, Sid = 10 };
            p.Threads.Add(threads);
            p.CriupsNsPid.Add(levels);
            if (levels.Length > 0)
            {
                p.CriupsNsTid.Add(levels);
            }
            return p;
        }

        // unshare (10) and its child (11), the init of a namespace it made, with a child of its own (2 there): as dumped.
        TreeChecks.Check(Tree, [Process(10, 0, [], 10), Process(11, 10, [1], 11), Process(12, 11, [2], 12)]);

        var e = Refused(() => TreeChecks.Check(Tree, [Process(10, 0, [], 10), Process(11, 10, [5], 11)]));
        Assert.Contains("entries[1] (pid 11): it has ids in 1 PID namespace(s) below the root's and its parent in 0", e.Message, StringComparison.Ordinal);

        e = Refused(() => TreeChecks.Check(Tree, [Process(10, 0, [], 10), Process(11, 10, [1, 1], 11)]));
        Assert.Contains("it has ids in 2 PID namespace(s) below the root's and its parent in 0", e.Message, StringComparison.Ordinal);

        var threads = Process(11, 10, [1], 11, 13);
        e = Refused(() => TreeChecks.Check(Tree, [Process(10, 0, [], 10), threads]));
        Assert.Contains("criups_ns_tid has 1 ids for 2 thread(s) in 1 PID namespace level(s)", e.Message, StringComparison.Ordinal);

        e = Refused(() => TreeChecks.Check(Tree, [Process(10, 0, [], 10), Process(11, 10, [0], 11)]));
        Assert.Contains("id 0 in a PID namespace below the root's is outside Linux's range", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RepeatedFileIdsAreNamedNotAnUnexpectedError()
    {
        const string Files = "/img/files.img";
        FileEntry Regular(uint id) => new() { Id = id, Type = FdTypes.Reg, Reg = new RegFileEntry { Id = id, Name = "/etc/hostname", Flags = 0, Pos = 0, Fown = new FownEntry() } };

        // "An item with the same key has already been added" before.
        var e = Refused(() => FileChecks.Index(Files, [Regular(1), Regular(2), Regular(1)]));
        Assert.Equal($"{Files}: entries[0] (Reg) and entries[2] (Reg) have the same id, 1; each must have its own.", e.Message);

        var mismatched = Regular(3);
        mismatched.Reg.Id = 4;
        Assert.Contains("entries[0] (Reg): its id is 3 but its reg.id is 4", Refused(() => FileChecks.Index(Files, [mismatched])).Message, StringComparison.Ordinal);

        var bare = new FileEntry { Id = 5, Type = FdTypes.Pipe };
        Assert.Contains("entries[0] (Pipe): a Pipe file without its description (pipe)", Refused(() => FileChecks.Index(Files, [bare])).Message, StringComparison.Ordinal);
    }
}
