using CriuPS.Native.Memory;

namespace CriuPS.Engine.Lazy;

/// <summary>Where the pages of a lazy restore come from: the image directory's pages files, or a page server.</summary>
internal interface ILazyPageSource : IDisposable
{
    /// <summary>For messages: "the image directory /img", "page server 10.0.0.2:7000 (TLS)".</summary>
    string Description { get; }

    /// <summary>
    /// Reads the saved contents of [<paramref name="address"/>, +length) of process <paramref name="pid"/> (image
    /// addresses, within one pagemap run) into <paramref name="destination"/>.
    /// </summary>
    void Read(int pid, Address address, Span<byte> destination);

    /// <summary>Every page has arrived (a page server then stops).</summary>
    void Complete(PageCount pages);

    /// <summary>Breaks off, from another thread, a read that waits on the network (the transfer is being stopped).</summary>
    void Interrupt();
}
