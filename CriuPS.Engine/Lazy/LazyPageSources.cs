using CriuPS.Engine.PageServer;
using CriuPS.Engine.Restore;

namespace CriuPS.Engine.Lazy;

/// <summary>Picks where a lazy restore's pages come from.</summary>
internal static class LazyPageSources
{
    /// <summary>The page server of the options, checked to serve this very image, or else the image directory.</summary>
    public static ILazyPageSource Open(RestoreSession session) =>
        session.Options.PageServer is { } server
            ? PageServerPageSource.Connect(server, session.Images)
            : new ImagePageSource(session.Images, session.PagesVerifiedOnRead);
}
