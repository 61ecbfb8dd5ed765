using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Restore.Checks;

/// <summary>
/// The runs of saved pages in pagemap-PID.img as a checkpoint writes them: whole pages, at least one, in address
/// order without overlaps, each inside the process's memory areas (mm-PID.img's, already checked to be in order), with
/// flags CRIU defines. A run outside the areas would be written where nothing is mapped; an absurd page count could
/// not even be added up.
/// </summary>
internal static class PagemapChecks
{
    private const PagemapFlags KnownFlags = PagemapFlags.InParent | PagemapFlags.Lazy | PagemapFlags.Present;

    public static void Check(string path, IReadOnlyList<PagemapEntry> runs, IReadOnlyList<VmaEntry> areas, string mmPath)
    {
        int area = 0;
        ulong previousEnd = 0;
        for (int i = 0; i < runs.Count; i++)
        {
            var run = runs[i];
            ulong pages = run.HasNrPages ? run.NrPages : run.CompatNrPages;
            // entries[0] is the head that names the pages file. Named only in a refusal (not formatted for every run).
            var entry = new RunName(i + 1, run.Vaddr, pages);
            if (pages == 0)
            {
                throw ImageDamage.In(path, $"{entry}: the run has no pages.");
            }
            if (!new Address(run.Vaddr).IsPageAligned)
            {
                throw ImageDamage.In(path, $"{entry}: the run does not start on a page boundary.");
            }
            if (run.Vaddr >= Mman.TaskSize || pages > (Mman.TaskSize - run.Vaddr) >> Page.Shift)
            {
                throw ImageDamage.In(path, $"{entry}: the run ends beyond the user address space (0x{Mman.TaskSize:x}).");
            }
            if (((PagemapFlags)run.Flags & ~KnownFlags) != 0)
            {
                throw ImageDamage.In(path, $"{entry}: flags 0x{run.Flags:x} have bits CRIU does not define (PE_PARENT, PE_LAZY, PE_PRESENT).");
            }
            ulong start = run.Vaddr, end = start + (pages << Page.Shift);
            if (start < previousEnd)
            {
                throw ImageDamage.In(path, $"{entry}: the run overlaps or comes before entries[{i}]; runs are listed in address order, apart.");
            }
            previousEnd = end;
            // The run lies in one area, or in areas that follow one another without a gap.
            while (area < areas.Count && areas[area].End <= start)
            {
                area++;
            }
            ulong covered = area < areas.Count && areas[area].Start <= start ? areas[area].End : start;
            for (int next = area + 1; covered < end && next < areas.Count && areas[next].Start == covered; next++)
            {
                covered = areas[next].End;
            }
            if (covered < end)
            {
                throw ImageDamage.In(path, $"{entry}: pages at {new AddressRange(covered, end)} are in no memory area of {Path.GetFileName(mmPath)}.");
            }
        }
    }

    // How a message names a run: its place in the file, its address and its size.
    private readonly record struct RunName(int Index, ulong Vaddr, ulong Pages)
    {
        public override string ToString() => $"entries[{Index}] ({Vaddr:x}, {Pages} pages)";
    }
}
