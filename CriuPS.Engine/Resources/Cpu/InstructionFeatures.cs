using static CriuPS.Engine.Resources.Cpu.CapabilityWords;

namespace CriuPS.Engine.Resources.Cpu;

/// <summary>One instruction-set feature: its bit in the capability words and its name in /proc/cpuinfo.</summary>
/// <remarks>A class: LINQ over reference types runs precompiled framework code, where a struct would be compiled
/// at a first restore.</remarks>
internal sealed record InstructionFeature(int Word, int Bit, string Name);

/// <summary>
/// The bits of the capability words that a restored program may depend on: instruction-set extensions that user
/// code can execute, which programs and libraries test once (glibc's ifuncs choose memcpy, strlen, libm variants at
/// start-up) and then use without asking again. A CPU that lacks one would kill the restored program with SIGILL.
/// The other bits (virtualization, power management, speculation controls, tuning hints) change nothing for a
/// program, so a CPU that lacks them is no reason to refuse.
/// This is CRIU 4.2's "ins" set (criu restore --cpu-cap=ins), with the instructions added since that CRIU does not
/// list (FMA, LAHF in 64-bit mode, AVX-512 IFMA, CLWB, MONITORX, WAITPKG, CLDEMOTE, MOVDIRI, MOVDIR64B,
/// VP2INTERSECT, SERIALIZE, TSXLDTRK, AVX512-FP16, AMX) and without the bits of that set that are no user
/// instructions: rep_good and erms (speed hints: REP MOVSB runs everywhere), monitor (MONITOR/MWAIT fault in user
/// mode under Linux), mpx (Linux dropped MPX in 5.6; its instructions are NOPs without it) and tme (memory
/// encryption). Features of leaves that CRIU's words do not hold (leaf 7 sub-leaf 1: AVX-VNNI, AVX512-BF16) cannot
/// be checked.
/// </summary>
internal static class InstructionFeatures
{
    public static IReadOnlyList<InstructionFeature> All { get; } =
    [
        new(Cpuid1Edx, 0, "fpu"), new(Cpuid1Edx, 4, "tsc"), new(Cpuid1Edx, 8, "cx8"), new(Cpuid1Edx, 11, "sep"),
        new(Cpuid1Edx, 15, "cmov"), new(Cpuid1Edx, 19, "clflush"), new(Cpuid1Edx, 23, "mmx"), new(Cpuid1Edx, 24, "fxsr"),
        new(Cpuid1Edx, 25, "sse"), new(Cpuid1Edx, 26, "sse2"),

        new(Cpuid80000001Edx, 11, "syscall"), new(Cpuid80000001Edx, 22, "mmxext"), new(Cpuid80000001Edx, 27, "rdtscp"),
        new(Cpuid80000001Edx, 30, "3dnowext"), new(Cpuid80000001Edx, 31, "3dnow"),

        new(Linux1, Nopl, "nopl"),

        new(Cpuid1Ecx, 0, "pni"), new(Cpuid1Ecx, 1, "pclmulqdq"), new(Cpuid1Ecx, 9, "ssse3"), new(Cpuid1Ecx, 12, "fma"),
        new(Cpuid1Ecx, 13, "cx16"), new(Cpuid1Ecx, 19, "sse4_1"), new(Cpuid1Ecx, 20, "sse4_2"), new(Cpuid1Ecx, 22, "movbe"),
        new(Cpuid1Ecx, 23, "popcnt"), new(Cpuid1Ecx, 25, "aes"), new(Cpuid1Ecx, 26, "xsave"), new(Cpuid1Ecx, 27, "osxsave"),
        new(Cpuid1Ecx, 28, "avx"), new(Cpuid1Ecx, 29, "f16c"), new(Cpuid1Ecx, 30, "rdrand"),

        new(Cpuid80000001Ecx, 0, "lahf_lm"), new(Cpuid80000001Ecx, 5, "abm"), new(Cpuid80000001Ecx, 6, "sse4a"),
        new(Cpuid80000001Ecx, 7, "misalignsse"), new(Cpuid80000001Ecx, 8, "3dnowprefetch"), new(Cpuid80000001Ecx, 11, "xop"),
        new(Cpuid80000001Ecx, 16, "fma4"), new(Cpuid80000001Ecx, 21, "tbm"), new(Cpuid80000001Ecx, 29, "mwaitx"),

        new(Cpuid7Ebx, 0, "fsgsbase"), new(Cpuid7Ebx, 3, "bmi1"), new(Cpuid7Ebx, 4, "hle"), new(Cpuid7Ebx, 5, "avx2"),
        new(Cpuid7Ebx, 8, "bmi2"), new(Cpuid7Ebx, 11, "rtm"), new(Cpuid7Ebx, 16, "avx512f"), new(Cpuid7Ebx, 17, "avx512dq"),
        new(Cpuid7Ebx, 18, "rdseed"), new(Cpuid7Ebx, 19, "adx"), new(Cpuid7Ebx, 21, "avx512ifma"), new(Cpuid7Ebx, 23, "clflushopt"),
        new(Cpuid7Ebx, 24, "clwb"), new(Cpuid7Ebx, 26, "avx512pf"), new(Cpuid7Ebx, 27, "avx512er"), new(Cpuid7Ebx, 28, "avx512cd"),
        new(Cpuid7Ebx, 29, "sha_ni"), new(Cpuid7Ebx, 30, "avx512bw"), new(Cpuid7Ebx, 31, "avx512vl"),

        new(CpuidDSub1Eax, 0, "xsaveopt"), new(CpuidDSub1Eax, 1, "xsavec"), new(CpuidDSub1Eax, 2, "xgetbv1"),

        new(Cpuid7Ecx, 0, "prefetchwt1"), new(Cpuid7Ecx, 1, "avx512vbmi"), new(Cpuid7Ecx, 5, "waitpkg"),
        new(Cpuid7Ecx, 6, "avx512_vbmi2"), new(Cpuid7Ecx, 8, "gfni"), new(Cpuid7Ecx, 9, "vaes"), new(Cpuid7Ecx, 10, "vpclmulqdq"),
        new(Cpuid7Ecx, 11, "avx512_vnni"), new(Cpuid7Ecx, 12, "avx512_bitalg"), new(Cpuid7Ecx, 14, "avx512_vpopcntdq"),
        new(Cpuid7Ecx, 22, "rdpid"), new(Cpuid7Ecx, 25, "cldemote"), new(Cpuid7Ecx, 27, "movdiri"), new(Cpuid7Ecx, 28, "movdir64b"),

        new(Cpuid80000008Ebx, 0, "clzero"),

        new(Cpuid7Edx, 2, "avx512_4vnniw"), new(Cpuid7Edx, 3, "avx512_4fmaps"), new(Cpuid7Edx, 8, "avx512_vp2intersect"),
        new(Cpuid7Edx, 14, "serialize"), new(Cpuid7Edx, 16, "tsxldtrk"), new(Cpuid7Edx, 22, "amx_bf16"),
        new(Cpuid7Edx, 23, "avx512_fp16"), new(Cpuid7Edx, 24, "amx_tile"), new(Cpuid7Edx, 25, "amx_int8"),
    ];
}
