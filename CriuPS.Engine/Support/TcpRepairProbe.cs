using CriuPS.Engine.Privileges;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Support;

/// <summary>Puts a fresh, unconnected TCP socket into repair mode, then closes it.</summary>
internal sealed class TcpRepairProbe : FeatureProbe
{
    public override string Name => "TcpRepair";

    public override bool Essential => false;

    public override string Requirement => "TCP repair mode (Linux 3.5+) and CAP_NET_ADMIN";

    public override string Impact => "Established TCP connections cannot be saved or restored.";

    public override (bool, string) Check()
    {
        int errno = Sockets.TryTcpRepair(out string call);
        return errno == 0
            ? (true, $"a TCP socket accepts TCP_REPAIR; {SessionPrivileges.Current().Describe(Capability.NetAdmin)}")
            : (false, $"{call} failed: {Errno.Describe(errno)}; {SessionPrivileges.Current().Describe(Capability.NetAdmin)}");
    }
}
