using System.Runtime.InteropServices;

namespace CriuPS.Native.Interop;

/// <summary>
/// posix_spawn(3), used instead of System.Diagnostics.Process so that the .NET runtime never waits on (and
/// steals ptrace stops of) the processes CriuPS traces.
/// </summary>
public static unsafe partial class PosixSpawn
{
    private const int SetSignalDefaults = 0x04;
    private const int SetSignalMask = 0x08;
    private const int SetSid = 0x80;

    // glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336; leave room to spare.
    private const int OpaqueSize = 1024;

    /// <summary>This process's environment as <see cref="Spawn"/> takes one ("NAME=value" each), for a program that inherits it.</summary>
    public static List<string> CurrentEnvironment()
    {
        var variables = new List<string>();
        foreach (System.Collections.DictionaryEntry variable in Environment.GetEnvironmentVariables())
        {
            variables.Add($"{variable.Key}={variable.Value}");
        }
        return variables;
    }

    /// <summary>
    /// Starts <paramref name="path"/> with stderr on /dev/null, stdin and stdout on <paramref name="stdin"/> and
    /// <paramref name="stdout"/> (descriptors of ours; by default /dev/null too), default signal handling and an empty
    /// mask; with no environment but <paramref name="environment"/> ("NAME=value" each), empty by default.
    /// </summary>
    public static int Spawn(string path, IReadOnlyList<string> argv, bool newSession, int stdin = -1, int stdout = -1, IReadOnlyList<string>? environment = null)
    {
        var actions = Marshal.AllocHGlobal(OpaqueSize);
        var attributes = Marshal.AllocHGlobal(OpaqueSize);
        var strings = new List<IntPtr>();
        try
        {
            Check(posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
            Check(posix_spawnattr_init(attributes), "posix_spawnattr_init");
            var devNull = Marshal.StringToCoTaskMemUTF8("/dev/null");
            strings.Add(devNull);
            Check(stdin >= 0 ? posix_spawn_file_actions_adddup2(actions, stdin, 0) : posix_spawn_file_actions_addopen(actions, 0, devNull, O.RDONLY, 0),
                "posix_spawn_file_actions_addopen");
            Check(stdout >= 0 ? posix_spawn_file_actions_adddup2(actions, stdout, 1) : posix_spawn_file_actions_addopen(actions, 1, devNull, O.WRONLY, 0),
                "posix_spawn_file_actions_addopen");
            Check(posix_spawn_file_actions_addopen(actions, 2, devNull, O.WRONLY, 0), "posix_spawn_file_actions_addopen");

            ulong* all = stackalloc ulong[16];
            ulong* none = stackalloc ulong[16];
            for (int i = 0; i < 16; i++)
            {
                all[i] = ulong.MaxValue;
                none[i] = 0;
            }
            Check(posix_spawnattr_setsigdefault(attributes, all), "posix_spawnattr_setsigdefault");
            Check(posix_spawnattr_setsigmask(attributes, none), "posix_spawnattr_setsigmask");
            short flags = (short)(SetSignalDefaults | SetSignalMask | (newSession ? SetSid : 0));
            Check(posix_spawnattr_setflags(attributes, flags), "posix_spawnattr_setflags");

            var argvArray = new IntPtr[argv.Count + 1];
            for (int i = 0; i < argv.Count; i++)
            {
                argvArray[i] = Marshal.StringToCoTaskMemUTF8(argv[i]);
                strings.Add(argvArray[i]);
            }
            var envp = new IntPtr[(environment?.Count ?? 0) + 1];
            for (int i = 0; i < envp.Length - 1; i++)
            {
                envp[i] = Marshal.StringToCoTaskMemUTF8(environment![i]);
                strings.Add(envp[i]);
            }
            var pathPtr = Marshal.StringToCoTaskMemUTF8(path);
            strings.Add(pathPtr);
            int pid;
            fixed (IntPtr* a = argvArray)
            fixed (IntPtr* e = envp)
            {
                Check(posix_spawn(&pid, pathPtr, actions, attributes, a, e), $"posix_spawn({path})");
            }
            return pid;
        }
        finally
        {
            posix_spawn_file_actions_destroy(actions);
            posix_spawnattr_destroy(attributes);
            Marshal.FreeHGlobal(actions);
            Marshal.FreeHGlobal(attributes);
            foreach (var s in strings)
            {
                Marshal.FreeCoTaskMem(s);
            }
        }
    }

    private static void Check(int result, string call)
    {
        // posix_spawn functions return the error number instead of setting errno.
        if (result != 0)
        {
            throw new NativeException(call, result);
        }
    }

    [LibraryImport("libc")]
    private static partial int posix_spawn(int* pid, IntPtr path, IntPtr fileActions, IntPtr attributes, IntPtr* argv, IntPtr* envp);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_init(IntPtr actions);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_destroy(IntPtr actions);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_addopen(IntPtr actions, int fd, IntPtr path, int flags, uint mode);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_adddup2(IntPtr actions, int fd, int newFd);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_init(IntPtr attributes);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_destroy(IntPtr attributes);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setflags(IntPtr attributes, short flags);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setsigdefault(IntPtr attributes, ulong* signals);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setsigmask(IntPtr attributes, ulong* signals);
}
