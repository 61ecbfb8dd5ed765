namespace CriuPS.Engine.PageServer;

/// <summary>
/// The messages of the page server protocol. A session starts with the client's Hello and the server's Welcome
/// (or Error), then follows one of two purposes:
/// dump:  FileBegin / FileData... / FileEnd per image file, the last of them criups-digests.img (the digests of the
///        others, which the server checks against what arrived), Commit → Committed (or Error), Close → Goodbye
///        (nothing else after the commit: the image is final);
/// pages: PageRequest → PageData (or Error), ..., Done → Goodbye (the server stops) or Close → Goodbye.
/// Either side may send Error instead of its next message, and then closes.
/// </summary>
internal enum FrameType : byte
{
    Hello = 1,
    Welcome = 2,
    Error = 3,
    FileBegin = 10,
    FileData = 11,
    FileEnd = 12,
    Commit = 13,
    Committed = 14,
    Close = 15,
    Goodbye = 16,
    PageRequest = 20,
    PageData = 21,
    Done = 22,
}

/// <summary>What a client connects for.</summary>
internal enum SessionPurpose : byte
{
    /// <summary>Stream a checkpoint's image files into the server's image directory.</summary>
    Dump = 1,

    /// <summary>Fetch the pages of the server's image for a lazy restore.</summary>
    LazyPages = 2,
}

/// <summary>Why a server (or client) refused, sent with an Error frame.</summary>
internal enum RefusalCode : byte
{
    /// <summary>The request cannot be served (an image directory that is not empty, a bad file name...).</summary>
    Refused = 1,

    /// <summary>The server has no image to serve pages from.</summary>
    NoImage = 2,

    /// <summary>The server's image is not the one the restore reads (another checkpoint).</summary>
    WrongImage = 3,

    /// <summary>The other side speaks another version of the protocol.</summary>
    Version = 4,

    /// <summary>A frame broke the protocol.</summary>
    Protocol = 5,

    /// <summary>Anything else that went wrong on that side.</summary>
    Failed = 6,

    /// <summary>
    /// An image file is not as its checkpoint wrote it: a dump's file arrived damaged (it does not match the digests
    /// the client sent in criups-digests.img), or the image a server serves pages from is damaged.
    /// </summary>
    Corrupt = 7,
}
