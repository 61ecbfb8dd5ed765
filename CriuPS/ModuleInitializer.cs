using System.Management.Automation;
using CriuPS.Engine;

namespace CriuPS;

/// <summary>
/// On Import-Module: starts warming up the engine in the background, so a first checkpoint does not pay for it
/// while the process is frozen; and makes sure that when PowerShell exits, no page server keeps listening and no
/// lazily restored process is left to run without the pages this process was serving it.
/// </summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer
{
    private static int exitHooked;

    public void OnImport()
    {
        EngineWarmup.Start();
        if (Interlocked.Exchange(ref exitHooked, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => EngineShutdown.Run("The PowerShell session that served the lazy restore ended.");
        }
    }
}
