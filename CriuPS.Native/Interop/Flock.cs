namespace CriuPS.Native.Interop;

/// <summary>The operations of flock(2) (whole-file locks that belong to an open file description).</summary>
public static class Flock
{
    public const int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
}
