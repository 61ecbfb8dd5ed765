using CriuPS.Engine.EngineProcess;

namespace CriuPS.EngineProcess;

/// <summary>criups-engine: one checkpoint, asked on stdin and reported on stdout (see EngineProcessServer).</summary>
internal static class Program
{
    private static int Main() => EngineProcessServer.Serve(Console.OpenStandardInput(), Console.OpenStandardOutput());
}
