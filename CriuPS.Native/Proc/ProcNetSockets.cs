using System.Net;

namespace CriuPS.Native.Proc;
