namespace CriuPS.Native.Interop;

/// <summary>ptrace(2) requests used by CriuPS.</summary>
public enum PtraceRequest : long
{
    Cont = 7,
    Kill = 8,
    GetRegs = 12,
    SetRegs = 13,
    Detach = 17,
    Syscall = 24,
    SetOptions = 0x4200,
    GetEventMsg = 0x4201,
    GetSigInfo = 0x4202,
    GetRegSet = 0x4204,
    SetRegSet = 0x4205,
    Seize = 0x4206,
    Interrupt = 0x4207,
    Listen = 0x4208,
    PeekSigInfo = 0x4209,
    GetSigMask = 0x420a,
    SetSigMask = 0x420b,
    SeccompGetFilter = 0x420c,
    SeccompGetMetadata = 0x420d,
    GetRseqConfiguration = 0x420f,
}
