namespace CriuPS.Native.Interop;

/// <summary>Regset note types for PTRACE_GETREGSET/SETREGSET.</summary>
public static class RegsetType
{
    public const ulong PrStatus = 1;
    public const ulong X86XState = 0x202;
    public const ulong X86ShadowStack = 0x204;
}
