using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Restore;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Model.Views;

/// <summary>
/// crit's explorers ("crit x DIR ps|fds|mems|rss") as objects: the process tree, the open files, the memory
/// areas and the saved pages of an image directory, CriuPS's or CRIU's.
/// </summary>
public static class CheckpointImageViews
{
    public static IEnumerable<object> Read(string path, CheckpointImageView view)
    {
        if (view == CheckpointImageView.Image)
            return [CheckpointImageReader.Read(path)];
        var images = ImageSet.Read(path);
        return view switch
        {
            CheckpointImageView.Tree => Tree(images),
            CheckpointImageView.Files => Files(images),
            CheckpointImageView.Memory => Memory(images),
            CheckpointImageView.Pages => Pages(images),
            _ => throw new ArgumentOutOfRangeException(nameof(view), view, null),
        };
    }

    private static List<ImageTreeNode> Tree(ImageSet images)
    {
        var children = images.Tree.ToLookup(p => p.Ppid);
        var nodes = new List<ImageTreeNode>();
        void Visit(PstreeEntry entry, int depth)
        {
            var live = images.Processes.FirstOrDefault(p => p.Pstree == entry);
            nodes.Add(new ImageTreeNode
            {
                ImagePath = images.Directory,
                Id = (int)entry.Pid,
                ParentId = (int)entry.Ppid,
                ProcessGroupId = (int)entry.Pgid,
                SessionId = (int)entry.Sid,
                Name = live?.Name ?? images.Zombies.First(z => z.Pstree == entry).Core.Tc.Comm,
                State = live is null ? "zombie" : CheckpointImageReader.State(live.LeaderCore),
                ThreadCount = live?.Cores.Count ?? 0,
                Depth = depth,
            });
            foreach (var child in children[entry.Pid])
                Visit(child, depth + 1);
        }
        Visit(images.Tree[0], 0);
        return nodes;
    }

    private static List<ImageOpenFile> Files(ImageSet images)
    {
        var names = new FileNames(images);
        var result = new List<ImageOpenFile>();
        foreach (var process in images.Processes)
        {
            ImageOpenFile File(string fd, FdTypes type, uint id) => new()
            {
                ImagePath = images.Directory,
                ProcessId = process.Pid,
                Fd = fd,
                Type = FileNames.TypeName(type),
                Target = names.Of(type, id),
                FileId = id,
            };
            foreach (var fd in process.FileDescriptors)
                result.Add(File(fd.Fd.ToString(System.Globalization.CultureInfo.InvariantCulture), fd.Type, fd.Id));
            result.Add(File("cwd", FdTypes.Reg, process.Fs.CwdId));
            result.Add(File("root", FdTypes.Reg, process.Fs.RootId));
            result.Add(File("exe", FdTypes.Reg, process.Mm.ExeFileId));
        }
        return result;
    }

    private static List<ImageMapping> Memory(ImageSet images)
    {
        var mappings = new MappingNames(new FileNames(images));
        return images.Processes.SelectMany(process => process.Mm.Vmas.Select(vma => new ImageMapping
        {
            ImagePath = images.Directory,
            ProcessId = process.Pid,
            Start = vma.Start,
            End = vma.End,
            Protection = CheckpointImageReader.Protection(vma),
            Kind = CheckpointImageReader.Kind(vma),
            Mapping = mappings.Of(vma),
        })).ToList();
    }

    private static List<ImageResidentPages> Pages(ImageSet images)
    {
        var mappings = new MappingNames(new FileNames(images));
        var result = new List<ImageResidentPages>();
        foreach (var process in images.Processes)
        {
            var runs = process.Pagemap.Select(e => (Range: e.Range(), InParent: e.IsInParent())).ToList();
            foreach (var vma in process.Mm.Vmas)
            {
                var area = new AddressRange(vma.Start, vma.End);
                var covering = runs.Where(r => r.Range.Overlaps(area)).ToList();
                result.Add(new ImageResidentPages
                {
                    ImagePath = images.Directory,
                    ProcessId = process.Pid,
                    Start = vma.Start,
                    End = vma.End,
                    Pages = (long)((vma.End - vma.Start) >> Page.Shift),
                    ResidentPages = covering.Sum(r => CheckpointImageReader.Overlap(r.Range, area)) >> Page.Shift,
                    ParentPages = covering.Where(r => r.InParent).Sum(r => CheckpointImageReader.Overlap(r.Range, area)) >> Page.Shift,
                    Runs = covering.Count,
                    Mapping = mappings.Of(vma),
                });
            }
        }
        return result;
    }
}
