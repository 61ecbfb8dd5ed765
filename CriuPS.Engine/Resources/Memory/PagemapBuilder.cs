using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// Collects pagemap entries, merging runs that touch and share flags: the runs copied into the pages file go straight
/// into the pagemap (in address order, as their bytes follow one another there); the runs left to the parent image of
/// an incremental dump (in address order too) join them at <see cref="Finish"/>, which keeps the whole in address order.
/// </summary>
internal sealed class PagemapBuilder
{
    private readonly List<PagemapEntry> entries;
    private readonly List<PagemapEntry> inParent = new();

    public PagemapBuilder(List<PagemapEntry> entries) => this.entries = entries;

    /// <summary>Pages copied into the pages file.</summary>
    public PageCount Pages { get; private set; }

    /// <summary>Pages left to the parent image.</summary>
    public PageCount ParentPages { get; private set; }

    public void Add(Address start, PageCount pages, PagemapFlags flags)
    {
        Pages += pages;
        Append(entries, start, pages, flags);
    }

    public void AddInParent(AddressRange run)
    {
        ParentPages += run.Pages;
        Append(inParent, run.Start, run.Pages, PagemapFlags.InParent);
    }

    /// <summary>Merges the runs left to the parent into the pagemap, in address order.</summary>
    public void Finish()
    {
        var present = entries.ToList();
        entries.Clear();
        int i = 0, j = 0;
        while (i < present.Count || j < inParent.Count)
        {
            bool takePresent = j == inParent.Count || (i < present.Count && present[i].Vaddr < inParent[j].Vaddr);
            entries.Add(takePresent ? present[i++] : inParent[j++]);
        }
        inParent.Clear();
    }

    private static void Append(List<PagemapEntry> list, Address start, PageCount pages, PagemapFlags flags)
    {
        if (list.Count > 0)
        {
            var last = list[^1];
            if (last.Flags == (uint)flags && last.Vaddr + (last.NrPages << Page.Shift) == start.Value)
            {
                last.NrPages += pages.Value;
                return;
            }
        }
        list.Add(new PagemapEntry { Vaddr = start.Value, CompatNrPages = 0, NrPages = pages.Value, Flags = (uint)flags });
    }
}
