using CriuPS.Engine.Images.Proto;

namespace CriuPS.Engine.Restore;

/// <summary>A process saved as a zombie: its place in the tree and its exit status.</summary>
internal sealed record ZombieImages(PstreeEntry Pstree, CoreEntry Core)
{
    /// <summary>CRIU's TASK_DEAD: how zombies are recorded.</summary>
    public const uint TaskDead = 2;

    public int Pid => (int)Pstree.Pid;

    /// <summary>The wait status the parent will see (exit code in bits 8-15, or the killing signal in bits 0-6).</summary>
    public int ExitStatus => (int)Core.Tc.ExitCode;
}
