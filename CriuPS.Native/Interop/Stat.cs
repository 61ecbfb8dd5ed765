namespace CriuPS.Native.Interop;
