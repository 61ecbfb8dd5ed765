using System.Management.Automation;
using CriuPS.Engine;

namespace CriuPS;

/// <summary>On Import-Module: starts warming up the engine in the background, so a first checkpoint does not pay for it while the process is frozen.</summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer
{
    public void OnImport() => EngineWarmup.Start();
}
