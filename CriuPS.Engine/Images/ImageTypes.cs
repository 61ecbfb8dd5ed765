using System.Buffers.Binary;
using CriuPS.Engine.Images.Proto;
using Google.Protobuf;

namespace CriuPS.Engine.Images;

/// <summary>
/// Every kind of image file CRIU writes (criu/image-desc.c), with the entry layout crit uses to
/// decode it (lib/pycriu/images/images.py). Images CRIU no longer writes but still restores
/// (vmas, sigacts, creds, itimers, ...) are included; the obsolete PAGES_OLD and SHM_PAGES_OLD
/// layouts ("pages-%d" with a pagemap magic, "pages-shmem-%ld") are not: CRIU never opens them. One is CriuPS's own:
/// criups-digests.img, the digests of the others.
/// </summary>
public static class ImageTypes
{
    public static readonly ImageType Inventory = new("inventory", "INVENTORY", "inventory.img", ImageIdKind.None,
        null, ImageMagic.Inventory, null, EntrySchema.Of<InventoryEntry>());

    // Process tree and per-task state.
    public static readonly ImageType Pstree = Entries<PstreeEntry>("pstree", "PSTREE", "pstree.img", ImageIdKind.None, ImageMagic.Pstree);
    public static readonly ImageType Core = Entries<CoreEntry>("core", "CORE", "core-{0}.img", ImageIdKind.Decimal, ImageMagic.Core);
    public static readonly ImageType Ids = Entries<TaskKobjIdsEntry>("ids", "IDS", "ids-{0}.img", ImageIdKind.Decimal, ImageMagic.Ids);
    public static readonly ImageType Fs = Entries<FsEntry>("fs", "FS", "fs-{0}.img", ImageIdKind.Decimal, ImageMagic.Fs);
    public static readonly ImageType Seccomp = Entries<SeccompEntry>("seccomp", "SECCOMP", "seccomp.img", ImageIdKind.None, ImageMagic.Seccomp);
    public static readonly ImageType Cgroup = Entries<CgroupEntry>("cgroup", "CGROUP", "cgroup.img", ImageIdKind.None, ImageMagic.Cgroup);
    public static readonly ImageType Sigacts = Entries<SaEntry>("sigacts", "SIGACT", "sigacts-{0}.img", ImageIdKind.Decimal, ImageMagic.Sigact);
    public static readonly ImageType Itimers = Entries<ItimerEntry>("itimers", "ITIMERS", "itimers-{0}.img", ImageIdKind.Decimal, ImageMagic.Itimers);
    public static readonly ImageType PosixTimers = Entries<PosixTimerEntry>("posix-timers", "POSIX_TIMERS", "posix-timers-{0}.img", ImageIdKind.Decimal, ImageMagic.PosixTimers);
    public static readonly ImageType Creds = Entries<CredsEntry>("creds", "CREDS", "creds-{0}.img", ImageIdKind.Decimal, ImageMagic.Creds);
    public static readonly ImageType Rlimit = Entries<RlimitEntry>("rlimit", "RLIMIT", "rlimit-{0}.img", ImageIdKind.Decimal, ImageMagic.Rlimit);
    public static readonly ImageType SignalShared = Entries<SiginfoEntry>("signal-s", "SIGNAL", "signal-s-{0}.img", ImageIdKind.Decimal, ImageMagic.Signal);
    public static readonly ImageType SignalPrivate = Entries<SiginfoEntry>("signal-p", "SIGNAL", "signal-p-{0}.img", ImageIdKind.Decimal, ImageMagic.Signal);

    // Memory.
    public static readonly ImageType Mm = Entries<MmEntry>("mm", "MM", "mm-{0}.img", ImageIdKind.Decimal, ImageMagic.Mm);
    public static readonly ImageType Vmas = Entries<VmaEntry>("vmas", "VMAS", "vmas-{0}.img", ImageIdKind.Decimal, ImageMagic.Vmas);
    public static readonly ImageType Pagemap = PagemapImage("pagemap", "pagemap-{0}.img");
    public static readonly ImageType ShmemPagemap = PagemapImage("pagemap-shmem", "pagemap-shmem-{0}.img");
    public static readonly ImageType Pages = RawImage("pages", "PAGES", "pages-{0}.img", ImageIdKind.Decimal);

    // Files and descriptors.
    public static readonly ImageType Fdinfo = Entries<FdinfoEntry>("fdinfo", "FDINFO", "fdinfo-{0}.img", ImageIdKind.Decimal, ImageMagic.Fdinfo);
    public static readonly ImageType Files = Entries<FileEntry>("files", "FILES", "files.img", ImageIdKind.None, ImageMagic.Files);
    public static readonly ImageType RegFiles = Entries<RegFileEntry>("reg-files", "REG_FILES", "reg-files.img", ImageIdKind.None, ImageMagic.RegFiles);
    public static readonly ImageType ExtFiles = Entries<ExtFileEntry>("ext-files", "EXT_FILES", "ext-files.img", ImageIdKind.None, ImageMagic.ExtFiles);
    public static readonly ImageType NsFiles = Entries<NsFileEntry>("ns-files", "NS_FILES", "ns-files.img", ImageIdKind.None, ImageMagic.NsFiles);
    public static readonly ImageType RemapFpath = Entries<RemapFilePathEntry>("remap-fpath", "REMAP_FPATH", "remap-fpath.img", ImageIdKind.None, ImageMagic.RemapFpath);
    public static readonly ImageType GhostFile = new("ghost-file", "GHOST_FILE", "ghost-file-{0}.img", ImageIdKind.Hex,
        ImageMagic.Common, ImageMagic.GhostFile,
        // A small ghost file's content follows its head whole; a larger one comes as chunks.
        head: EntrySchema.Of<GhostFileEntry>().WithPayload(PayloadRule.RestOfFile<GhostFileEntry>(g => !g.Chunks)),
        entry: EntrySchema.Of<GhostChunkEntry>().WithPayload(PayloadRule.Sized<GhostChunkEntry>(c => c.Len)));
    public static readonly ImageType Memfd = Entries<MemfdInodeEntry>("memfd", "MEMFD_INODE", "memfd.img", ImageIdKind.None, ImageMagic.MemfdInode);
    public static readonly ImageType FileLocks = Entries<FileLockEntry>("filelocks", "FILE_LOCKS", "filelocks.img", ImageIdKind.None, ImageMagic.FileLocks);
    public static readonly ImageType Pipes = Entries<PipeEntry>("pipes", "PIPES", "pipes.img", ImageIdKind.None, ImageMagic.Pipes);
    public static readonly ImageType PipesData = Sized<PipeDataEntry>("pipes-data", "PIPES_DATA", "pipes-data.img", ImageIdKind.None, ImageMagic.PipesData, p => p.Bytes);
    public static readonly ImageType Fifo = Entries<FifoEntry>("fifo", "FIFO", "fifo.img", ImageIdKind.None, ImageMagic.Fifo);
    public static readonly ImageType FifoData = Sized<PipeDataEntry>("fifo-data", "FIFO_DATA", "fifo-data.img", ImageIdKind.None, ImageMagic.FifoData, p => p.Bytes);
    public static readonly ImageType Eventfd = Entries<EventfdFileEntry>("eventfd", "EVENTFD_FILE", "eventfd.img", ImageIdKind.None, ImageMagic.EventfdFile);
    public static readonly ImageType Eventpoll = Entries<EventpollFileEntry>("eventpoll", "EVENTPOLL_FILE", "eventpoll.img", ImageIdKind.None, ImageMagic.EventpollFile);
    public static readonly ImageType EventpollTfd = Entries<EventpollTfdEntry>("eventpoll-tfd", "EVENTPOLL_TFD", "eventpoll-tfd.img", ImageIdKind.None, ImageMagic.EventpollTfd);
    public static readonly ImageType Signalfd = Entries<SignalfdEntry>("signalfd", "SIGNALFD", "signalfd.img", ImageIdKind.None, ImageMagic.Signalfd);
    public static readonly ImageType Timerfd = Entries<TimerfdEntry>("timerfd", "TIMERFD", "timerfd.img", ImageIdKind.None, ImageMagic.Timerfd);
    public static readonly ImageType Inotify = Entries<InotifyFileEntry>("inotify", "INOTIFY_FILE", "inotify.img", ImageIdKind.None, ImageMagic.InotifyFile);
    public static readonly ImageType InotifyWd = Entries<InotifyWdEntry>("inotify-wd", "INOTIFY_WD", "inotify-wd.img", ImageIdKind.None, ImageMagic.InotifyWd);
    public static readonly ImageType Fanotify = Entries<FanotifyFileEntry>("fanotify", "FANOTIFY_FILE", "fanotify.img", ImageIdKind.None, ImageMagic.FanotifyFile);
    public static readonly ImageType FanotifyMark = Entries<FanotifyMarkEntry>("fanotify-mark", "FANOTIFY_MARK", "fanotify-mark.img", ImageIdKind.None, ImageMagic.FanotifyMark);
    public static readonly ImageType Pidfd = Entries<PidfdEntry>("pidfd", "PIDFD", "pidfd.img", ImageIdKind.None, ImageMagic.Pidfd);
    public static readonly ImageType BpfmapFile = Entries<BpfmapFileEntry>("bpfmap-file", "BPFMAP_FILE", "bpfmap-file.img", ImageIdKind.None, ImageMagic.BpfmapFile);
    public static readonly ImageType BpfmapData = Sized<BpfmapDataEntry>("bpfmap-data", "BPFMAP_DATA", "bpfmap-data.img", ImageIdKind.None, ImageMagic.BpfmapData,
        b => (ulong)b.KeysBytes + b.ValuesBytes);
    public static readonly ImageType Tty = Entries<TtyFileEntry>("tty", "TTY_FILES", "tty.img", ImageIdKind.None, ImageMagic.TtyFiles);
    public static readonly ImageType TtyInfo = Entries<TtyInfoEntry>("tty-info", "TTY_INFO", "tty-info.img", ImageIdKind.None, ImageMagic.TtyInfo);
    public static readonly ImageType TtyData = Entries<TtyDataEntry>("tty-data", "TTY_DATA", "tty-data.img", ImageIdKind.None, ImageMagic.TtyData);

    // Sockets.
    public static readonly ImageType UnixSk = Entries<UnixSkEntry>("unixsk", "UNIXSK", "unixsk.img", ImageIdKind.None, ImageMagic.UnixSk);
    public static readonly ImageType InetSk = Entries<InetSkEntry>("inetsk", "INETSK", "inetsk.img", ImageIdKind.None, ImageMagic.InetSk);
    public static readonly ImageType PacketSk = Entries<PacketSockEntry>("packetsk", "PACKETSK", "packetsk.img", ImageIdKind.None, ImageMagic.PacketSk);
    public static readonly ImageType NetlinkSk = Entries<NetlinkSkEntry>("netlinksk", "NETLINK_SK", "netlinksk.img", ImageIdKind.None, ImageMagic.NetlinkSk);
    public static readonly ImageType SkQueues = Sized<SkPacketEntry>("sk-queues", "SK_QUEUES", "sk-queues.img", ImageIdKind.None, ImageMagic.SkQueues, p => p.Length);
    public static readonly ImageType TcpStream = Sized<TcpStreamEntry>("tcp-stream", "TCP_STREAM", "tcp-stream-{0}.img", ImageIdKind.Hex, ImageMagic.TcpStream,
        t => (ulong)t.InqLen + t.OutqLen);

    // Namespaces.
    public static readonly ImageType Utsns = Entries<UtsnsEntry>("utsns", "UTSNS", "utsns-{0}.img", ImageIdKind.Decimal, ImageMagic.Utsns);
    public static readonly ImageType Userns = Entries<UsernsEntry>("userns", "USERNS", "userns-{0}.img", ImageIdKind.Decimal, ImageMagic.Userns);
    public static readonly ImageType Timens = Entries<TimensEntry>("timens", "TIMENS", "timens-{0}.img", ImageIdKind.Decimal, ImageMagic.Timens);
    public static readonly ImageType Pidns = Entries<PidnsEntry>("pidns", "PIDNS", "pidns-{0}.img", ImageIdKind.Decimal, ImageMagic.Pidns);
    public static readonly ImageType IpcnsVar = Entries<IpcVarEntry>("ipcns-var", "IPC_VAR", "ipcns-var-{0}.img", ImageIdKind.Decimal, ImageMagic.IpcVar);
    public static readonly ImageType IpcnsShm = Sized<IpcShmEntry>("ipcns-shm", "IPCNS_SHM", "ipcns-shm-{0}.img", ImageIdKind.Decimal, ImageMagic.IpcnsShm,
        s => s.InPagemaps ? 0 : s.Size, alignment: sizeof(uint));
    public static readonly ImageType IpcnsSem = Sized<IpcSemEntry>("ipcns-sem", "IPCNS_SEM", "ipcns-sem-{0}.img", ImageIdKind.Decimal, ImageMagic.IpcnsSem,
        s => s.Nsems * (ulong)sizeof(ushort), alignment: sizeof(ulong));
    public static readonly ImageType IpcnsMsg = new("ipcns-msg", "IPCNS_MSG", "ipcns-msg-{0}.img", ImageIdKind.Decimal,
        ImageMagic.Common, ImageMagic.IpcnsMsg, null,
        EntrySchema.Of<IpcMsgEntry>().WithChildren<IpcMsgEntry>(
            EntrySchema.Of<IpcMsg>().WithPayload(PayloadRule.Sized<IpcMsg>(m => m.Msize, alignment: sizeof(ulong))),
            q => q.Qnum));
    public static readonly ImageType Mountpoints = Entries<MntEntry>("mountpoints", "MNTS", "mountpoints-{0}.img", ImageIdKind.Decimal, ImageMagic.Mnts);
    public static readonly ImageType Autofs = Entries<AutofsEntry>("autofs", "AUTOFS", "autofs-{0}.img", ImageIdKind.Decimal, ImageMagic.Autofs);
    public static readonly ImageType BinfmtMisc = Entries<BinfmtMiscEntry>("binfmt-misc", "BINFMT_MISC", "binfmt-misc.img", ImageIdKind.None, ImageMagic.BinfmtMisc);
    public static readonly ImageType BinfmtMiscOld = Entries<BinfmtMiscEntry>("binfmt-misc-old", "BINFMT_MISC", "binfmt-misc-{0}.img", ImageIdKind.Decimal, ImageMagic.BinfmtMisc);
    public static readonly ImageType TmpfsImg = RawImage("tmpfs", "TMPFS_IMG", "tmpfs-{0}.tar.gz", ImageIdKind.Decimal);
    public static readonly ImageType TmpfsDev = RawImage("tmpfs-dev", "TMPFS_DEV", "tmpfs-dev-{0}.tar.gz", ImageIdKind.Decimal);

    // Network namespaces: links and sysctls as entries, addresses/routes/rules/firewall as the
    // raw output of the tools that dumped them.
    public static readonly ImageType Netdev = Entries<NetDeviceEntry>("netdev", "NETDEV", "netdev-{0}.img", ImageIdKind.Decimal, ImageMagic.Netdev);
    public static readonly ImageType Netns = Entries<NetnsEntry>("netns", "NETNS", "netns-{0}.img", ImageIdKind.Decimal, ImageMagic.Netns);
    public static readonly ImageType Tunfile = Entries<TunfileEntry>("tunfile", "TUNFILE", "tunfile.img", ImageIdKind.None, ImageMagic.Tunfile);
    public static readonly ImageType Ifaddr = RawImage("ifaddr", "IFADDR", "ifaddr-{0}.img", ImageIdKind.Decimal);
    public static readonly ImageType Route = RawImage("route", "ROUTE", "route-{0}.img", ImageIdKind.Decimal);
    public static readonly ImageType Route6 = RawImage("route6", "ROUTE6", "route6-{0}.img", ImageIdKind.Decimal);
    public static readonly ImageType Rule = RawImage("rule", "RULE", "rule-{0}.img", ImageIdKind.Decimal);
    public static readonly ImageType Iptables = RawImage("iptables", "IPTABLES", "iptables-{0}.img", ImageIdKind.Decimal);
    public static readonly ImageType Ip6tables = RawImage("ip6tables", "IP6TABLES", "ip6tables-{0}.img", ImageIdKind.Decimal);
    public static readonly ImageType Nftables = RawImage("nftables", "NFTABLES", "nftables-{0}.img", ImageIdKind.Decimal);
    public static readonly ImageType NetnsCt = RawImage("netns-ct", "NETNF_CT", "netns-ct-{0}.img", ImageIdKind.Decimal);
    public static readonly ImageType NetnsExp = RawImage("netns-exp", "NETNF_EXP", "netns-exp-{0}.img", ImageIdKind.Decimal);

    // Whole-dump information.
    public static readonly ImageType Cpuinfo = Entries<CpuinfoEntry>("cpuinfo", "CPUINFO", "cpuinfo.img", ImageIdKind.None, ImageMagic.Cpuinfo);
    public static readonly ImageType Apparmor = Entries<ApparmorEntry>("apparmor", "APPARMOR", "apparmor.img", ImageIdKind.None, ImageMagic.Apparmor);
    public static readonly ImageType Stats = new("stats", "STATS", "stats-{0}", ImageIdKind.Word,
        ImageMagic.Service, ImageMagic.Stats, null, EntrySchema.Of<StatsEntry>());
    public static readonly ImageType IrmapCache = new("irmap-cache", "IRMAP_CACHE", "irmap-cache", ImageIdKind.None,
        ImageMagic.Service, ImageMagic.IrmapCache, null, EntrySchema.Of<IrmapCacheEntry>());

    // CriuPS's own: the digests of the other files (Images/Digests), which CRIU never opens.
    public static readonly ImageType CriupsDigests = new("criups-digests", "CRIUPS_DIGESTS", "criups-digests.img", ImageIdKind.None,
        ImageMagic.Service, ImageMagic.CriupsDigests, null, EntrySchema.Of<CriupsDigestEntry>());

    // CriuPS's own: POSIX message queues (Resources/Ipc/PosixQueues), which CRIU does not save.
    public static readonly ImageType CriupsMqueue = Entries<CriupsMqueueEntry>("criups-mqueue", "CRIUPS_MQUEUE", "criups-mqueue.img", ImageIdKind.None, ImageMagic.CriupsMqueue);

    /// <summary>
    /// All image types. Where several share a magic (pagemap and pagemap-shmem, signal-s and
    /// signal-p, binfmt-misc and binfmt-misc-old) they also share their layout, and the one listed
    /// first is what identification by magic alone reports.
    /// </summary>
    public static IReadOnlyList<ImageType> All { get; } =
    [
        Inventory, Pstree, Core, Ids, Fs, Seccomp, Cgroup, Sigacts, Itimers, PosixTimers, Creds, Rlimit,
        SignalShared, SignalPrivate,
        Mm, Vmas, Pagemap, ShmemPagemap, Pages,
        Fdinfo, Files, RegFiles, ExtFiles, NsFiles, RemapFpath, GhostFile, Memfd, FileLocks, Pipes, PipesData,
        Fifo, FifoData, Eventfd, Eventpoll, EventpollTfd, Signalfd, Timerfd, Inotify, InotifyWd, Fanotify,
        FanotifyMark, Pidfd, BpfmapFile, BpfmapData, Tty, TtyInfo, TtyData,
        UnixSk, InetSk, PacketSk, NetlinkSk, SkQueues, TcpStream,
        Utsns, Userns, Timens, Pidns, IpcnsVar, IpcnsShm, IpcnsSem, IpcnsMsg, Mountpoints, Autofs, BinfmtMisc,
        BinfmtMiscOld, TmpfsImg, TmpfsDev,
        Netdev, Netns, Tunfile, Ifaddr, Route, Route6, Rule, Iptables, Ip6tables, Nftables, NetnsCt, NetnsExp,
        Cpuinfo, Apparmor, Stats, IrmapCache, CriupsDigests, CriupsMqueue,
    ];

    /// <summary>The type a file name (a directory part is ignored) belongs to, or null.</summary>
    public static ImageType? Identify(string fileName)
    {
        string name = System.IO.Path.GetFileName(fileName);
        return All.FirstOrDefault(type => type.MatchesFileName(name));
    }

    /// <summary>
    /// The types whose header the start of a file carries (pass at least its first 8 bytes);
    /// empty when it is no known CRIU header. Raw images have no header and never match.
    /// </summary>
    public static IReadOnlyList<ImageType> IdentifyByMagic(ReadOnlySpan<byte> fileStart)
    {
        if (fileStart.Length < sizeof(uint))
            return [];
        uint first = BinaryPrimitives.ReadUInt32LittleEndian(fileStart);
        if (first == ImageMagic.Inventory)
            return [Inventory];
        if (fileStart.Length < 2 * sizeof(uint))
            return [];
        uint second = BinaryPrimitives.ReadUInt32LittleEndian(fileStart[sizeof(uint)..]);
        return All.Where(type => type.LeadMagic == first && type.Magic == second).ToList();
    }

    private static ImageType Entries<T>(string name, string magicName, string pattern, ImageIdKind idKind, uint magic)
        where T : IMessage<T>, new() =>
        new(name, magicName, pattern, idKind, ImageMagic.Common, magic, null, EntrySchema.Of<T>());

    private static ImageType Sized<T>(string name, string magicName, string pattern, ImageIdKind idKind, uint magic,
        Func<T, ulong> payloadLength, int alignment = 1) where T : IMessage<T>, new() =>
        new(name, magicName, pattern, idKind, ImageMagic.Common, magic, null,
            EntrySchema.Of<T>().WithPayload(PayloadRule.Sized(payloadLength, alignment)));

    private static ImageType PagemapImage(string name, string pattern) =>
        new(name, "PAGEMAP", pattern, ImageIdKind.Decimal, ImageMagic.Common, ImageMagic.Pagemap,
            EntrySchema.Of<PagemapHead>(), EntrySchema.Of<PagemapEntry>());

    private static ImageType RawImage(string name, string magicName, string pattern, ImageIdKind idKind) =>
        new(name, magicName, pattern, idKind, null, ImageMagic.Raw, null, null);
}
