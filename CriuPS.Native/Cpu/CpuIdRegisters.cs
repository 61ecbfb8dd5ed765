namespace CriuPS.Native.Cpu;

/// <summary>The four registers one CPUID leaf answers.</summary>
public readonly record struct CpuIdRegisters(uint Eax, uint Ebx, uint Ecx, uint Edx);
