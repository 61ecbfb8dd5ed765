namespace CriuPS.Engine.Dump;

/// <summary>
/// Where a dump's image files go: a directory on this machine (<see cref="ImageDirectoryTransaction"/>) or a page
/// server's (<see cref="PageServer.PageServerImageOutput"/>). Either way the image appears complete or not at all:
/// files created before <see cref="Commit"/> are invisible until it succeeds, and <see cref="Abort"/> removes them.
/// </summary>
internal interface IImageOutput
{
    /// <summary>The image directory once committed (on the server, for a page server).</summary>
    string Location { get; }

    /// <summary>Where dump.log is written now.</summary>
    string LogPath { get; }

    /// <summary>
    /// Creates an image file (mode 0600); before the commit it belongs to the image to commit, after it (stats-dump)
    /// it goes straight into the committed image, or stays on this machine when that image is a page server's (a
    /// committed image is final there).
    /// </summary>
    Stream Create(string fileName);

    /// <summary>Makes the image appear at <see cref="Location"/>.</summary>
    void Commit();

    /// <summary>After the commit and the files that follow it: the output is done.</summary>
    void Finish();

    /// <summary>Removes what was written; returns where the log was kept, if it was.</summary>
    string? Abort();
}
