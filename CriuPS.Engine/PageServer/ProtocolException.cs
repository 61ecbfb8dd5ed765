namespace CriuPS.Engine.PageServer;

/// <summary>A frame that breaks the page server protocol: truncated, too large, of an unknown type, out of place.</summary>
internal sealed class ProtocolException : IOException
{
    public ProtocolException(string message)
        : base(message)
    {
    }

    public ProtocolException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
