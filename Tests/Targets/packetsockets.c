/* packetsockets WORKDIR
 * A test target holding packet sockets on the loopback interface (run it in a network namespace of its own), that
 * verifies them after a checkpoint and restore:
 *   raw   SOCK_RAW, ETH_P_ALL, bound to lo; TPACKET_V2, PACKET_RESERVE 32, PACKET_AUXDATA, PACKET_LOSS,
 *         a promiscuous membership on lo (PACKET_ADD_MEMBERSHIP), a receive ring (4 blocks of 4 KiB, 2 KiB frames)
 *         and a transmit ring (2 blocks of 4 KiB) mapped together into memory
 *   dgram SOCK_DGRAM, ETH_P_IP, bound to lo, in fanout group 4242 (PACKET_FANOUT_HASH), PACKET_TIMESTAMP 1
 *   udp   a UDP socket bound to 127.0.0.1:<port>, the destination of the test datagrams, and an unbound one that
 *         sends them (made beforehand: a socket made after the restore would live in the restored process's
 *         network namespace, which CriuPS does not save)
 * Before it is ready it reads every frame the receive ring holds, so that the ring it has is empty. WORKDIR/ready
 * holds the pid once set-up is done. On SIGUSR1 it checks every option with getsockopt; sends one datagram through
 * the transmit ring (an Ethernet frame written into the ring, sent with send(2)) and another with a UDP socket; and
 * expects both in the receive ring and on the datagram socket. It appends "OK pid=P" or "FAIL what pid=P" to
 * WORKDIR/packetsockets.log. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

#define BLOCK 4096
#define FRAME 2048
#define RX_BLOCKS 4
#define TX_BLOCKS 2
#define RESERVE 32
#define FANOUT_GROUP 4242

static volatile sig_atomic_t check_requested;
static int raw, dgram, udp, sender, lo;
static unsigned short port;
static unsigned char *ring;

static void on_usr1(int s) { (void)s; check_requested = 1; }

static void set(int fd, int option, const void *value, socklen_t length, const char *what)
{
	if (setsockopt(fd, SOL_PACKET, option, value, length) != 0) die(what);
}

static void set_int(int fd, int option, int value, const char *what) { set(fd, option, &value, sizeof(value), what); }

static int get_int(int fd, int option)
{
	int value = -1;
	socklen_t length = sizeof(value);
	return getsockopt(fd, SOL_PACKET, option, &value, &length) == 0 ? value : -1;
}

static struct tpacket2_hdr *rx_frame(int i) { return (struct tpacket2_hdr *)(ring + (size_t)i * FRAME); }
static struct tpacket2_hdr *tx_frame(int i) { return (struct tpacket2_hdr *)(ring + (size_t)RX_BLOCKS * BLOCK + (size_t)i * FRAME); }

/* Hands every filled frame of the receive ring back to the kernel; returns whether one held MARK. */
static int drain_ring(const char *mark)
{
	int found = 0;
	for (int i = 0; i < RX_BLOCKS * BLOCK / FRAME; i++) {
		struct tpacket2_hdr *h = rx_frame(i);
		if (!(h->tp_status & TP_STATUS_USER)) continue;
		if (mark && memmem((unsigned char *)h + h->tp_mac, h->tp_snaplen, mark, strlen(mark))) found = 1;
		__atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
	}
	return found;
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

/* Writes an Ethernet frame carrying a UDP datagram with TEXT to 127.0.0.1:port into the first transmit frame (the
 * kernel's transmit ring starts at frame 0 after a restore, and the ring was never used before) and sends it. */
static int send_through_ring(const char *text)
{
	struct tpacket2_hdr *h = tx_frame(0);
	if (h->tp_status != TP_STATUS_AVAILABLE) return 0;
	unsigned char *frame = (unsigned char *)h + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
	struct ethhdr *eth = (struct ethhdr *)frame;
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	struct udphdr *u = (struct udphdr *)(ip + 1);
	size_t payload = strlen(text);
	memset(eth, 0, sizeof(*eth));
	eth->h_proto = htons(ETH_P_IP);
	memset(ip, 0, sizeof(*ip));
	ip->version = 4; ip->ihl = 5; ip->ttl = 64; ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons((unsigned short)(sizeof(*ip) + sizeof(*u) + payload));
	ip->saddr = ip->daddr = htonl(INADDR_LOOPBACK);
	ip->check = checksum(ip, sizeof(*ip));
	u->source = htons(9); u->dest = htons(port);
	u->len = htons((unsigned short)(sizeof(*u) + payload)); u->check = 0;
	memcpy(u + 1, text, payload);
	h->tp_len = (unsigned)(sizeof(*eth) + sizeof(*ip) + sizeof(*u) + payload);
	__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
	return send(raw, NULL, 0, 0) >= 0;
}

/* Waits up to 2 s for MARK in the receive ring and on the datagram socket. */
static const char *expect(const char *mark)
{
	int in_ring = 0, on_dgram = 0;
	unsigned char buffer[2048];
	for (int round = 0; round < 200 && !(in_ring && on_dgram); round++) {
		if (drain_ring(mark)) in_ring = 1;
		ssize_t n;
		while ((n = recv(dgram, buffer, sizeof(buffer), MSG_DONTWAIT)) > 0)
			if (memmem(buffer, (size_t)n, mark, strlen(mark))) on_dgram = 1;
		struct pollfd fds[2] = { { raw, POLLIN, 0 }, { dgram, POLLIN, 0 } };
		poll(fds, 2, 10);
	}
	return !in_ring ? "ring" : !on_dgram ? "dgram" : NULL;
}

static const char *check(void)
{
	if (get_int(raw, PACKET_VERSION) != TPACKET_V2) return "version";
	if (get_int(raw, PACKET_RESERVE) != RESERVE) return "reserve";
	if (get_int(raw, PACKET_AUXDATA) != 1) return "auxdata";
	if (get_int(raw, PACKET_LOSS) != 1) return "loss";
	if (get_int(dgram, PACKET_TIMESTAMP) != 1) return "timestamp";
	if (get_int(dgram, PACKET_FANOUT) != (FANOUT_GROUP | (PACKET_FANOUT_HASH << 16))) return "fanout";
	struct sockaddr_ll bound;
	socklen_t length = sizeof(bound);
	if (getsockname(raw, (struct sockaddr *)&bound, &length) != 0 || bound.sll_ifindex != lo || bound.sll_protocol != htons(ETH_P_ALL)) return "raw-bound";
	length = sizeof(bound);
	if (getsockname(dgram, (struct sockaddr *)&bound, &length) != 0 || bound.sll_ifindex != lo || bound.sll_protocol != htons(ETH_P_IP)) return "dgram-bound";

	if (!send_through_ring("through-the-tx-ring")) return "tx-send";
	const char *missing = expect("through-the-tx-ring");
	if (missing) return missing[0] == 'r' ? "tx-to-ring" : "tx-to-dgram";
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (sendto(sender, "sent-with-udp", 13, 0, (struct sockaddr *)&to, sizeof(to)) != 13) return "udp-send";
	missing = expect("sent-with-udp");
	if (missing) return missing[0] == 'r' ? "udp-to-ring" : "udp-to-dgram";
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2 || chdir(argv[1]) != 0) die("usage: packetsockets WORKDIR");
	FILE *log = fopen("packetsockets.log", "a");
	if (!log) die("log");
	setvbuf(log, NULL, _IOLBF, 0);
	lo = (int)if_nametoindex("lo");
	if (!lo) die("if_nametoindex(lo)");

	raw = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (raw < 0) die("socket(raw)");
	struct sockaddr_ll address = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = lo };
	if (bind(raw, (struct sockaddr *)&address, sizeof(address)) != 0) die("bind(raw)");
	set_int(raw, PACKET_VERSION, TPACKET_V2, "PACKET_VERSION");
	set_int(raw, PACKET_RESERVE, RESERVE, "PACKET_RESERVE");
	set_int(raw, PACKET_AUXDATA, 1, "PACKET_AUXDATA");
	set_int(raw, PACKET_LOSS, 1, "PACKET_LOSS");
	struct packet_mreq membership = { .mr_ifindex = lo, .mr_type = PACKET_MR_PROMISC };
	set(raw, PACKET_ADD_MEMBERSHIP, &membership, sizeof(membership), "PACKET_ADD_MEMBERSHIP");
	struct tpacket_req rx = { BLOCK, RX_BLOCKS, FRAME, RX_BLOCKS * BLOCK / FRAME };
	struct tpacket_req tx = { BLOCK, TX_BLOCKS, FRAME, TX_BLOCKS * BLOCK / FRAME };
	set(raw, PACKET_RX_RING, &rx, sizeof(rx), "PACKET_RX_RING");
	set(raw, PACKET_TX_RING, &tx, sizeof(tx), "PACKET_TX_RING");
	ring = mmap(NULL, (size_t)(RX_BLOCKS + TX_BLOCKS) * BLOCK, PROT_READ | PROT_WRITE, MAP_SHARED, raw, 0);
	if (ring == MAP_FAILED) die("mmap(ring)");

	dgram = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
	if (dgram < 0) die("socket(dgram)");
	struct sockaddr_ll ip_on_lo = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_ifindex = lo };
	if (bind(dgram, (struct sockaddr *)&ip_on_lo, sizeof(ip_on_lo)) != 0) die("bind(dgram)");
	set_int(dgram, PACKET_TIMESTAMP, 1, "PACKET_TIMESTAMP");
	set_int(dgram, PACKET_FANOUT, FANOUT_GROUP | (PACKET_FANOUT_HASH << 16), "PACKET_FANOUT");

	udp = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in local = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (bind(udp, (struct sockaddr *)&local, sizeof(local)) != 0) die("bind(udp)");
	socklen_t length = sizeof(local);
	getsockname(udp, (struct sockaddr *)&local, &length);
	port = ntohs(local.sin_port);
	sender = socket(AF_INET, SOCK_DGRAM, 0);
	if (sender < 0) die("socket(sender)");

	drain_ring(NULL);
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
