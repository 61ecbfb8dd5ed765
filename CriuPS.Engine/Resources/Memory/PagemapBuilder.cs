using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>Collects pagemap entries in address order, merging runs that touch and share flags.</summary>
internal sealed class PagemapBuilder
{
    private readonly List<PagemapEntry> entries;

    public PagemapBuilder(List<PagemapEntry> entries) => this.entries = entries;

    public PageCount Pages { get; private set; }

    public void Add(Address start, PageCount pages, PagemapFlags flags)
    {
        Pages += pages;
        if (entries.Count > 0)
        {
            var last = entries[^1];
            if (last.Flags == (uint)flags && last.Vaddr + (last.NrPages << Page.Shift) == start.Value)
            {
                last.NrPages += pages.Value;
                return;
            }
        }
        entries.Add(new PagemapEntry { Vaddr = start.Value, CompatNrPages = 0, NrPages = pages.Value, Flags = (uint)flags });
    }
}
