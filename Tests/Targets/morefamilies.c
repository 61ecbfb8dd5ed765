/* morefamilies WORKDIR
 * A test target holding sockets of the other families and protocols (run it in a network namespace of its own,
 * lo up, net.ipv4.ping_group_range covering group 0), that verifies them after a checkpoint and restore:
 *   rawicmp  SOCK_RAW IPPROTO_ICMP bound to 127.0.0.1, ICMP_FILTER letting only echo replies through, IP_RECVERR,
 *            IP_TTL 33
 *   rawhdr   SOCK_RAW protocol 253 with IP_HDRINCL and IP_NODEFRAG, connected to 127.0.0.1 (port 0: its peer shows
 *            only in /proc/net/raw), and rawrecv, SOCK_RAW protocol 253 bound to 127.0.0.1, which receives from it
 *   rawicmp6 SOCK_RAW IPPROTO_ICMPV6 with ICMPV6_FILTER letting only echo replies through, IPV6_RECVERR,
 *            IPV6_UNICAST_HOPS 17, IPV6_TCLASS 0x20
 *   ping     SOCK_DGRAM IPPROTO_ICMP bound to 127.0.0.1 with echo identifier 4242, connected to 127.0.0.1, IP_RECVTTL,
 *            IP_TOS 0x10, IP_MTU_DISCOVER IP_PMTUDISC_DO, IP_MULTICAST_TTL 7, IP_MULTICAST_LOOP 0
 *   ping6    SOCK_DGRAM IPPROTO_ICMPV6, unbound
 *   lite     UDP-Lite bound to 127.0.0.1:<port>, UDPLITE_RECV_CSCOV 20, and litesend, UDP-Lite connected to it,
 *            UDPLITE_SEND_CSCOV 20, IP_OPTIONS router alert
 *   freebind UDP with IP_FREEBIND and IP_TRANSPARENT bound to 192.0.2.1:7000, an address this machine does not have
 *   monitor  NETLINK_ROUTE bound (port = pid) to groups RTMGRP_LINK | RTMGRP_IPV4_IFADDR, joined to group 33 above
 *            the bind mask, NETLINK_NO_ENOBUFS, NETLINK_EXT_ACK
 *   request  NETLINK_ROUTE of type SOCK_DGRAM, unbound, NETLINK_CAP_ACK
 *   nlserver NETLINK_USERSOCK bound to port 5000, and nlclient, NETLINK_USERSOCK bound to port 5001 connected to it
 * WORKDIR/ready holds the pid once set-up is done. On SIGUSR1 it checks every option and address with getsockopt
 * and getsockname, and then that each socket works: a ping and a ping6 get their replies (and the raw ICMP sockets
 * see the replies but not the requests); a hand-made IP packet sent on rawhdr reaches rawrecv; a UDP-Lite datagram
 * reaches lite; request adds 10.77.0.1 to lo, gets its acknowledgement, and monitor hears of the new address;
 * nlclient's message reaches nlserver from port 5001. It appends "OK pid=P" or "FAIL what pid=P" to
 * WORKDIR/morefamilies.log. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/udp.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "selfcheck.h"

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif
#ifndef SOL_UDPLITE
#define SOL_UDPLITE 136
#endif
#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV 10
#define UDPLITE_RECV_CSCOV 11
#endif
#ifndef IP_NODEFRAG
#define IP_NODEFRAG 22
#endif

#define PING_ID 4242
#define RAW_PROTO 253
#define CSCOV 20
#define EXTRA_GROUP 33
#define NL_SERVER 5000
#define NL_CLIENT 5001

static volatile sig_atomic_t check_requested;
static int rawicmp, rawhdr, rawrecv, rawicmp6, ping4, ping6, lite, litesend, freebind, monitor, request, nlserver, nlclient;
static unsigned short lite_port;
static const unsigned char router_alert[4] = { IPOPT_RA, 4, 0, 0 };
static char failure[256];

static void on_usr1(int s) { (void)s; check_requested = 1; }

static int fail(const char *format, const char *what, long got)
{
	snprintf(failure, sizeof(failure), format, what, got);
	return 0;
}

static int get_int(int fd, int level, int option)
{
	int value = -12345;
	socklen_t length = sizeof(value);
	if (getsockopt(fd, level, option, &value, &length) != 0) return -12345;
	return value;
}

static void set_int(int fd, int level, int option, int value, const char *what)
{
	if (setsockopt(fd, level, option, &value, sizeof(value)) != 0) die(what);
}

#define EXPECT(fd, level, option, want) \
	do { int got_ = get_int(fd, level, option); if (got_ != (want)) return fail("%s is %ld", #fd " " #option, got_); } while (0)

static int readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 5000) == 1;
}

static int options_back(void)
{
	struct icmp_filter filter;
	socklen_t length = sizeof(filter);
	if (getsockopt(rawicmp, SOL_RAW, ICMP_FILTER, &filter, &length) != 0 || filter.data != ~(1U << ICMP_ECHOREPLY))
		return fail("%s is %lx", "rawicmp ICMP_FILTER", (long)filter.data);
	EXPECT(rawicmp, SOL_IP, IP_RECVERR, 1);
	EXPECT(rawicmp, SOL_IP, IP_TTL, 33);
	EXPECT(rawicmp, SOL_SOCKET, SO_PROTOCOL, IPPROTO_ICMP);
	EXPECT(rawhdr, SOL_IP, IP_HDRINCL, 1);
	EXPECT(rawhdr, SOL_IP, IP_NODEFRAG, 1);
	EXPECT(rawhdr, SOL_SOCKET, SO_PROTOCOL, RAW_PROTO);
	struct icmp6_filter filter6;
	length = sizeof(filter6);
	if (getsockopt(rawicmp6, SOL_ICMPV6, ICMPV6_FILTER, &filter6, &length) != 0) return fail("%s %ld", "rawicmp6 ICMPV6_FILTER", errno);
	for (int type = 0; type < 256; type++)
		if (((filter6.data[type >> 5] >> (type & 31)) & 1) != (type != ICMPV6_ECHO_REPLY))
			return fail("%s wrong for type %ld", "rawicmp6 ICMPV6_FILTER", type);
	EXPECT(rawicmp6, SOL_IPV6, IPV6_RECVERR, 1);
	EXPECT(rawicmp6, SOL_IPV6, IPV6_UNICAST_HOPS, 17);
	EXPECT(rawicmp6, SOL_IPV6, IPV6_TCLASS, 0x20);
	EXPECT(ping4, SOL_IP, IP_RECVTTL, 1);
	EXPECT(ping4, SOL_IP, IP_TOS, 0x10);
	EXPECT(ping4, SOL_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO);
	EXPECT(ping4, SOL_IP, IP_MULTICAST_TTL, 7);
	EXPECT(ping4, SOL_IP, IP_MULTICAST_LOOP, 0);
	EXPECT(ping4, SOL_SOCKET, SO_TYPE, SOCK_DGRAM);
	struct sockaddr_in name;
	length = sizeof(name);
	getsockname(ping4, (struct sockaddr *)&name, &length);
	if (ntohs(name.sin_port) != PING_ID || name.sin_addr.s_addr != htonl(INADDR_LOOPBACK))
		return fail("%s: echo identifier %ld", "ping getsockname", ntohs(name.sin_port));
	EXPECT(ping6, SOL_SOCKET, SO_PROTOCOL, IPPROTO_ICMPV6);
	EXPECT(lite, SOL_UDPLITE, UDPLITE_RECV_CSCOV, CSCOV);
	EXPECT(litesend, SOL_UDPLITE, UDPLITE_SEND_CSCOV, CSCOV);
	EXPECT(lite, SOL_SOCKET, SO_PROTOCOL, IPPROTO_UDPLITE);
	unsigned char options[40];
	length = sizeof(options);
	if (getsockopt(litesend, SOL_IP, IP_OPTIONS, options, &length) != 0 || length != sizeof(router_alert) || memcmp(options, router_alert, length) != 0)
		return fail("%s has %ld bytes", "litesend IP_OPTIONS", length);
	EXPECT(freebind, SOL_IP, IP_FREEBIND, 1);
	EXPECT(freebind, SOL_IP, IP_TRANSPARENT, 1);
	length = sizeof(name);
	getsockname(freebind, (struct sockaddr *)&name, &length);
	if (ntohs(name.sin_port) != 7000 || name.sin_addr.s_addr != inet_addr("192.0.2.1"))
		return fail("%s: port %ld", "freebind getsockname", ntohs(name.sin_port));
	return 1;
}

static int netlink_back(void)
{
	struct sockaddr_nl nl;
	socklen_t length = sizeof(nl);
	getsockname(monitor, (struct sockaddr *)&nl, &length);
	if (nl.nl_pid != (unsigned)getpid()) return fail("%s is %ld", "monitor port", nl.nl_pid);
	if (nl.nl_groups != (RTMGRP_LINK | RTMGRP_IPV4_IFADDR)) return fail("%s is %lx", "monitor groups", nl.nl_groups);
	unsigned int groups[4] = { 0 };
	length = sizeof(groups);
	if (getsockopt(monitor, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &length) != 0) return fail("%s: %ld", "NETLINK_LIST_MEMBERSHIPS", errno);
	if (!(groups[1] & (1U << (EXTRA_GROUP - 33)))) return fail("%s: second word %lx", "monitor group 33", groups[1]);
	EXPECT(monitor, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1);
	EXPECT(monitor, SOL_NETLINK, NETLINK_EXT_ACK, 1);
	EXPECT(monitor, SOL_NETLINK, NETLINK_CAP_ACK, 0);
	EXPECT(request, SOL_NETLINK, NETLINK_CAP_ACK, 1);
	EXPECT(request, SOL_SOCKET, SO_TYPE, SOCK_DGRAM);
	length = sizeof(nl);
	getsockname(request, (struct sockaddr *)&nl, &length);
	if (nl.nl_pid != 0) return fail("%s is %ld", "request (unbound) port", nl.nl_pid);
	length = sizeof(nl);
	if (getpeername(nlclient, (struct sockaddr *)&nl, &length) != 0 || nl.nl_pid != NL_SERVER) return fail("%s is %ld", "nlclient peer", nl.nl_pid);
	length = sizeof(nl);
	getsockname(nlserver, (struct sockaddr *)&nl, &length);
	if (nl.nl_pid != NL_SERVER) return fail("%s is %ld", "nlserver port", nl.nl_pid);
	return 1;
}

static unsigned short checksum(const void *data, size_t length)
{
	const unsigned short *words = data;
	unsigned long sum = 0;
	for (; length > 1; length -= 2) sum += *words++;
	if (length) sum += *(const unsigned char *)words;
	while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
	return (unsigned short)~sum;
}

static int pings_work(void)
{
	struct icmphdr echo = { .type = ICMP_ECHO, .un.echo.sequence = htons(1) };
	echo.checksum = checksum(&echo, sizeof(echo));
	if (send(ping4, &echo, sizeof(echo), 0) != sizeof(echo)) return fail("%s: %ld", "ping send", errno);
	struct icmphdr reply;
	if (!readable(ping4) || recv(ping4, &reply, sizeof(reply), 0) != sizeof(reply) || reply.type != ICMP_ECHOREPLY || ntohs(reply.un.echo.id) != PING_ID)
		return fail("%s (type %ld)", "ping reply", reply.type);
	unsigned char packet[256];
	if (!readable(rawicmp) || recv(rawicmp, packet, sizeof(packet), 0) < 28) return fail("%s %ld", "rawicmp heard nothing", 0);
	struct iphdr *ip = (struct iphdr *)packet;
	if (packet[ip->ihl * 4] != ICMP_ECHOREPLY) return fail("%s type %ld", "rawicmp heard", packet[ip->ihl * 4]);

	struct sockaddr_in6 loopback6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct icmp6hdr echo6 = { .icmp6_type = ICMPV6_ECHO_REQUEST };
	if (sendto(ping6, &echo6, sizeof(echo6), 0, (struct sockaddr *)&loopback6, sizeof(loopback6)) != sizeof(echo6)) return fail("%s: %ld", "ping6 send", errno);
	struct icmp6hdr reply6;
	if (!readable(ping6) || recv(ping6, &reply6, sizeof(reply6), 0) != sizeof(reply6) || reply6.icmp6_type != ICMPV6_ECHO_REPLY)
		return fail("%s (type %ld)", "ping6 reply", reply6.icmp6_type);
	if (!readable(rawicmp6) || recv(rawicmp6, &reply6, sizeof(reply6), 0) != sizeof(reply6) || reply6.icmp6_type != ICMPV6_ECHO_REPLY)
		return fail("%s type %ld", "rawicmp6 heard", reply6.icmp6_type);
	return 1;
}

static int datagrams_work(void)
{
	unsigned char packet[sizeof(struct iphdr) + 8] = { 0 };
	struct iphdr *ip = (struct iphdr *)packet;
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = RAW_PROTO;
	ip->tot_len = htons(sizeof(packet));
	ip->saddr = ip->daddr = htonl(INADDR_LOOPBACK);
	memcpy(packet + sizeof(struct iphdr), "rawhello", 8);
	if (send(rawhdr, packet, sizeof(packet), 0) != (ssize_t)sizeof(packet)) return fail("%s: %ld", "rawhdr send (connected)", errno);
	unsigned char got[128];
	ssize_t n = -1;
	if (!readable(rawrecv) || (n = recv(rawrecv, got, sizeof(got), 0)) != (ssize_t)sizeof(packet) || memcmp(got + 20, "rawhello", 8) != 0)
		return fail("%s: %ld bytes", "rawrecv", n);

	if (send(litesend, "hello-lite", 10, 0) != 10) return fail("%s: %ld", "UDP-Lite send", errno);
	if (!readable(lite) || (n = recv(lite, got, sizeof(got), 0)) != 10 || memcmp(got, "hello-lite", 10) != 0)
		return fail("%s: %ld bytes", "UDP-Lite receive", n);
	return 1;
}

static int netlink_works(void)
{
	struct {
		struct nlmsghdr header;
		struct ifaddrmsg address;
		struct rtattr attribute;
		struct in_addr value;
	} add = {
		.header = { .nlmsg_len = sizeof(add), .nlmsg_type = RTM_NEWADDR, .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, .nlmsg_seq = 7 },
		.address = { .ifa_family = AF_INET, .ifa_prefixlen = 32, .ifa_index = 1 /* lo: the first interface of a network namespace */ },
		.attribute = { .rta_len = RTA_LENGTH(4), .rta_type = IFA_LOCAL },
		.value = { inet_addr("10.77.0.1") },
	};
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (sendto(request, &add, sizeof(add), 0, (struct sockaddr *)&kernel, sizeof(kernel)) != sizeof(add)) return fail("%s: %ld", "RTM_NEWADDR send", errno);
	char answer[8192];
	ssize_t n = -1;
	if (!readable(request) || (n = recv(request, answer, sizeof(answer), 0)) < (ssize_t)sizeof(struct nlmsghdr)) return fail("%s: %ld", "RTM_NEWADDR ack", errno);
	struct nlmsghdr *header = (struct nlmsghdr *)answer;
	if (header->nlmsg_type != NLMSG_ERROR || ((struct nlmsgerr *)NLMSG_DATA(header))->error != 0 || header->nlmsg_seq != 7)
		return fail("%s: error %ld", "RTM_NEWADDR ack", header->nlmsg_type == NLMSG_ERROR ? ((struct nlmsgerr *)NLMSG_DATA(header))->error : -1);
	if (!readable(monitor) || (n = recv(monitor, answer, sizeof(answer), 0)) < (ssize_t)sizeof(struct nlmsghdr)) return fail("%s: %ld", "monitor heard nothing", errno);
	if (header->nlmsg_type != RTM_NEWADDR) return fail("%s: message type %ld", "monitor heard", header->nlmsg_type);

	if (send(nlclient, "hello-nl", 8, 0) != 8) return fail("%s: %ld", "nlclient send", errno);
	struct sockaddr_nl from;
	socklen_t length = sizeof(from);
	if (!readable(nlserver) || (n = recvfrom(nlserver, answer, sizeof(answer), 0, (struct sockaddr *)&from, &length)) != 8 || memcmp(answer, "hello-nl", 8) != 0)
		return fail("%s: %ld bytes", "nlserver receive", n);
	if (from.nl_pid != NL_CLIENT) return fail("%s: from port %ld", "nlserver receive", from.nl_pid);
	return 1;
}

static const char *check(void)
{
	if (options_back() && netlink_back() && pings_work() && datagrams_work() && netlink_works()) return NULL;
	return failure;
}

static int open_socket(int family, int type, int protocol, const char *what)
{
	int fd = socket(family, type, protocol);
	if (fd < 0) die(what);
	return fd;
}

static void bind_nl(int fd, unsigned port, unsigned groups, const char *what)
{
	struct sockaddr_nl address = { .nl_family = AF_NETLINK, .nl_pid = port, .nl_groups = groups };
	if (bind(fd, (struct sockaddr *)&address, sizeof(address)) != 0) die(what);
}

int main(int argc, char **argv)
{
	if (argc != 2 || chdir(argv[1]) != 0) die("usage: morefamilies WORKDIR");
	FILE *log = fopen("morefamilies.log", "a");
	if (!log) die("log");
	setvbuf(log, NULL, _IOLBF, 0);
	struct sockaddr_in loopback = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	rawicmp = open_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP, "socket(rawicmp)");
	struct icmp_filter filter = { ~(1U << ICMP_ECHOREPLY) };
	if (setsockopt(rawicmp, SOL_RAW, ICMP_FILTER, &filter, sizeof(filter)) != 0) die("ICMP_FILTER");
	set_int(rawicmp, SOL_IP, IP_RECVERR, 1, "IP_RECVERR");
	set_int(rawicmp, SOL_IP, IP_TTL, 33, "IP_TTL");
	if (bind(rawicmp, (struct sockaddr *)&loopback, sizeof(loopback)) != 0) die("bind(rawicmp)");

	rawhdr = open_socket(AF_INET, SOCK_RAW, RAW_PROTO, "socket(rawhdr)");
	set_int(rawhdr, SOL_IP, IP_HDRINCL, 1, "IP_HDRINCL");
	set_int(rawhdr, SOL_IP, IP_NODEFRAG, 1, "IP_NODEFRAG");
	if (connect(rawhdr, (struct sockaddr *)&loopback, sizeof(loopback)) != 0) die("connect(rawhdr)");
	rawrecv = open_socket(AF_INET, SOCK_RAW, RAW_PROTO, "socket(rawrecv)");
	if (bind(rawrecv, (struct sockaddr *)&loopback, sizeof(loopback)) != 0) die("bind(rawrecv)");

	rawicmp6 = open_socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6, "socket(rawicmp6)");
	struct icmp6_filter filter6;
	memset(&filter6, 0xff, sizeof(filter6));
	filter6.data[ICMPV6_ECHO_REPLY >> 5] &= ~(1U << (ICMPV6_ECHO_REPLY & 31));
	if (setsockopt(rawicmp6, SOL_ICMPV6, ICMPV6_FILTER, &filter6, sizeof(filter6)) != 0) die("ICMPV6_FILTER");
	set_int(rawicmp6, SOL_IPV6, IPV6_RECVERR, 1, "IPV6_RECVERR");
	set_int(rawicmp6, SOL_IPV6, IPV6_UNICAST_HOPS, 17, "IPV6_UNICAST_HOPS");
	set_int(rawicmp6, SOL_IPV6, IPV6_TCLASS, 0x20, "IPV6_TCLASS");

	ping4 = open_socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP, "socket(ping): is net.ipv4.ping_group_range set?");
	struct sockaddr_in ident = loopback;
	ident.sin_port = htons(PING_ID);
	if (bind(ping4, (struct sockaddr *)&ident, sizeof(ident)) != 0) die("bind(ping)");
	if (connect(ping4, (struct sockaddr *)&loopback, sizeof(loopback)) != 0) die("connect(ping)");
	set_int(ping4, SOL_IP, IP_RECVTTL, 1, "IP_RECVTTL");
	set_int(ping4, SOL_IP, IP_TOS, 0x10, "IP_TOS");
	set_int(ping4, SOL_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO, "IP_MTU_DISCOVER");
	set_int(ping4, SOL_IP, IP_MULTICAST_TTL, 7, "IP_MULTICAST_TTL");
	set_int(ping4, SOL_IP, IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP");
	ping6 = open_socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6, "socket(ping6)");

	lite = open_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE, "socket(lite)");
	if (bind(lite, (struct sockaddr *)&loopback, sizeof(loopback)) != 0) die("bind(lite)");
	set_int(lite, SOL_UDPLITE, UDPLITE_RECV_CSCOV, CSCOV, "UDPLITE_RECV_CSCOV");
	struct sockaddr_in lite_address;
	socklen_t length = sizeof(lite_address);
	getsockname(lite, (struct sockaddr *)&lite_address, &length);
	lite_port = ntohs(lite_address.sin_port);
	litesend = open_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE, "socket(litesend)");
	set_int(litesend, SOL_UDPLITE, UDPLITE_SEND_CSCOV, CSCOV, "UDPLITE_SEND_CSCOV");
	if (setsockopt(litesend, SOL_IP, IP_OPTIONS, router_alert, sizeof(router_alert)) != 0) die("IP_OPTIONS");
	if (connect(litesend, (struct sockaddr *)&lite_address, sizeof(lite_address)) != 0) die("connect(litesend)");

	freebind = open_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, "socket(freebind)");
	set_int(freebind, SOL_IP, IP_FREEBIND, 1, "IP_FREEBIND");
	set_int(freebind, SOL_IP, IP_TRANSPARENT, 1, "IP_TRANSPARENT");
	struct sockaddr_in elsewhere = { .sin_family = AF_INET, .sin_port = htons(7000), .sin_addr.s_addr = inet_addr("192.0.2.1") };
	if (bind(freebind, (struct sockaddr *)&elsewhere, sizeof(elsewhere)) != 0) die("bind(freebind)");

	monitor = open_socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, "socket(monitor)");
	bind_nl(monitor, 0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR, "bind(monitor)");
	set_int(monitor, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, EXTRA_GROUP, "NETLINK_ADD_MEMBERSHIP");
	set_int(monitor, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1, "NETLINK_NO_ENOBUFS");
	set_int(monitor, SOL_NETLINK, NETLINK_EXT_ACK, 1, "NETLINK_EXT_ACK");
	request = open_socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE, "socket(request)");
	set_int(request, SOL_NETLINK, NETLINK_CAP_ACK, 1, "NETLINK_CAP_ACK");
	nlserver = open_socket(AF_NETLINK, SOCK_RAW, NETLINK_USERSOCK, "socket(nlserver)");
	bind_nl(nlserver, NL_SERVER, 0, "bind(nlserver)");
	nlclient = open_socket(AF_NETLINK, SOCK_RAW, NETLINK_USERSOCK, "socket(nlclient)");
	bind_nl(nlclient, NL_CLIENT, 0, "bind(nlclient)");
	struct sockaddr_nl server = { .nl_family = AF_NETLINK, .nl_pid = NL_SERVER };
	if (connect(nlclient, (struct sockaddr *)&server, sizeof(server)) != 0) die("connect(nlclient)");

	signal(SIGUSR1, on_usr1);
	announce_ready(getpid());
	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		const char *failed = check();
		if (failed) fprintf(log, "FAIL %s pid=%d\n", failed, getpid());
		else fprintf(log, "OK pid=%d\n", getpid());
	}
}
