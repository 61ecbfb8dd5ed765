namespace CriuPS.Engine.Model.Views;

/// <summary>What Get-CheckpointImage shows of an image: the image itself, or one of crit's explorer views ("crit x").</summary>
public enum CheckpointImageView
{
    /// <summary>One <see cref="CheckpointImage"/> per image directory.</summary>
    Image,

    /// <summary>The process tree (crit x ps): one <see cref="ImageTreeNode"/> per process.</summary>
    Tree,

    /// <summary>Open files (crit x fds): one <see cref="ImageOpenFile"/> per descriptor, plus cwd, root and exe.</summary>
    Files,

    /// <summary>Memory areas (crit x mems): one <see cref="ImageMapping"/> per VMA.</summary>
    Memory,

    /// <summary>Saved pages (crit x rss): one <see cref="ImageResidentPages"/> per VMA.</summary>
    Pages,
}
