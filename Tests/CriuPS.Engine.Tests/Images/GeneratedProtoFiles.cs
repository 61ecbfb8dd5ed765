using CriuPS.Engine.Images.Proto;
using Google.Protobuf.Reflection;

namespace CriuPS.Engine.Tests.Images;

/// <summary>The generated classes' own reflection of every .proto file of the images, which tests may build.</summary>
internal static class GeneratedProtoFiles
{
    public static IEnumerable<FileDescriptor> All() =>
        typeof(CoreEntry).Assembly.GetTypes()
            .Where(t => t.Namespace == typeof(CoreEntry).Namespace && t.Name.EndsWith("Reflection", StringComparison.Ordinal))
            .Select(t => (FileDescriptor)t.GetProperty("Descriptor")!.GetValue(null)!);
}
