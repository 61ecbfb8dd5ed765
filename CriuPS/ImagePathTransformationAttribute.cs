using System.Management.Automation;
using CriuPS.Engine.Model;

namespace CriuPS;

/// <summary>
/// Lets a parameter that names an image directory take a CheckpointImage as well (from Checkpoint-Process or
/// Get-CheckpointImage): the image stands for its directory. Anything else passes through, to bind as a path.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ImagePathTransformationAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData) =>
        (inputData is PSObject wrapped ? wrapped.BaseObject : inputData) is CheckpointImage image ? image.Path : inputData;
}
