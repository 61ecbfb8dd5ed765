/* tcpstates WORKDIR
 * A test target holding TCP sockets in every state CriuPS saves with -TcpEstablished, both ends of each connection
 * in this one process (on loopback), and checking them after a checkpoint and restore:
 *   closewait  the peer wrote "peer-data" and shut down writing: this end is CLOSE_WAIT with the data and the FIN
 *              unread, the peer FIN_WAIT2. After: the data, then end of file; a reply still reaches the peer.
 *   finwait1   this end filled its send queue (the peer reads nothing: zero window) and shut down writing: its FIN
 *              waits behind the data, FIN_WAIT1. After: the peer reads every byte in order, then end of file, and
 *              its answer still arrives.
 *   lastack    the peer shut down first (CLOSE_WAIT here), then this end filled its send queue and shut down: LAST_ACK.
 *              After: the peer reads every byte then end of file; this end reads end of file.
 *   closing    this end filled its send queue and shut down (FIN_WAIT1), then the peer shut down too: this end got
 *              the peer's FIN before its own was acknowledged, CLOSING. After: as lastack.
 *   big        a connection with 8 MiB buffers (SO_SNDBUFFORCE, SO_RCVBUFFORCE), written into until it takes no more
 *              and none read, so that megabytes wait in both the send and the receive queue, and 1 MiB the other
 *              way (WORKDIR/queued: "written send-queue receive-queue", in bytes). After: the buffer sizes read back the same, every byte arrives in order both ways.
 *   options    an unbound IPv4 socket and an IPv6 one bound to [::1] (V6ONLY), never connected, with SO_REUSEADDR,
 *              SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT, TCP_NODELAY, TCP_CORK, SO_RCVBUF/SO_SNDBUF beyond the limits,
 *              SO_LINGER, IP_TOS, SO_MARK, SO_PRIORITY, TCP_USER_TIMEOUT, TCP_CONGESTION. After: each reads the same.
 *   tcp4v6     an IPv6 listener on [::] without V6ONLY with an IPv4 client connected through it (the accepted socket
 *              is ::ffff:127.0.0.1), and an IPv6 socket connected to ::ffff:127.0.0.1 of an IPv4 listener, data
 *              queued both ways. After: the data, an exchange both ways, and the IPv6 listener accepts IPv4 again.
 *   reuseport  three listeners on one port (SO_REUSEPORT). After: all on that port, and 12 new connections are each
 *              accepted by one of them.
 * Every state is checked (TCP_INFO tcpi_state) before WORKDIR/ready is written and again after the restore, before
 * anything is read. On SIGUSR1 it checks everything once and appends "OK pid=P" or "FAIL what pid=P" to
 * WORKDIR/tcpstates.log. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

#define SMALL_BUFFER 16384
#define BIG_BUFFER (8 << 20)
#define BACK_BYTES (1 << 20)
#define REUSEPORT_LISTENERS 3
#define REUSEPORT_CONNECTIONS 12

static char failure[512];

/* Records the first failure; returns 0 so that a check can "return fail(...)". */
static int fail(const char *format, ...)
{
	if (failure[0]) return 0;
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(failure, sizeof(failure), format, arguments);
	va_end(arguments);
	return 0;
}

static int state_of(int fd)
{
	struct tcp_info info;
	socklen_t length = sizeof(info);
	if (getsockopt(fd, SOL_TCP, TCP_INFO, &info, &length) != 0) return -1;
	return info.tcpi_state;
}

static const char *state_name(int state)
{
	static const char *names[] = { "?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
				       "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING" };
	return state > 0 && state < 12 ? names[state] : "?";
}

/* Waits (loopback is quick, but the machine may be loaded) for the kernel to bring fd into state. */
static void await_state(int fd, int state, const char *what)
{
	for (int i = 0; i < 2000 && state_of(fd) != state; i++) usleep(5000);
	if (state_of(fd) != state) {
		fprintf(stderr, "%s: %s where %s was expected\n", what, state_name(state_of(fd)), state_name(state));
		exit(1);
	}
}

static int expect_state(int fd, int state, const char *what)
{
	int now = state_of(fd);
	return now == state ? 1 : fail("%s-state: %s where %s was expected", what, state_name(now), state_name(state));
}

static void set_int(int fd, int level, int name, int value, const char *what)
{
	if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) die(what);
}

static int get_int(int fd, int level, int name)
{
	int value = -1;
	socklen_t length = sizeof(value);
	if (getsockopt(fd, level, name, &value, &length) != 0) return -1;
	return value;
}

static void set_blocking(int fd, int blocking)
{
	int flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK);
}

/* address:port of family (AF_INET or AF_INET6) in storage; returns its length. */
static socklen_t socket_address(int family, const char *address, int port, struct sockaddr_storage *storage)
{
	memset(storage, 0, sizeof(*storage));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)storage;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		inet_pton(AF_INET, address, &in->sin_addr);
		return sizeof(*in);
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)storage;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	inet_pton(AF_INET6, address, &in6->sin6_addr);
	return sizeof(*in6);
}

static int listener(int family, const char *address, int port, int reuseport)
{
	int fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0) die("socket(listener)");
	set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
	if (reuseport) set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
	struct sockaddr_storage storage;
	socklen_t length = socket_address(family, address, port, &storage);
	if (family == AF_INET6) set_int(fd, SOL_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY");
	if (bind(fd, (struct sockaddr *)&storage, length) != 0) die("bind(listener)");
	if (listen(fd, 16) != 0) die("listen");
	return fd;
}

static int port_of(int fd)
{
	struct sockaddr_storage storage;
	socklen_t length = sizeof(storage);
	if (getsockname(fd, (struct sockaddr *)&storage, &length) != 0) return -1;
	return ntohs(storage.ss_family == AF_INET ? ((struct sockaddr_in *)&storage)->sin_port
						  : ((struct sockaddr_in6 *)&storage)->sin6_port);
}

/* A client of family connected to address:port; buffer > 0 sets both buffer sizes before connecting. */
static int client(int family, const char *address, int port, int buffer)
{
	int fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0) die("socket(client)");
	if (buffer > 0) {
		set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, buffer, "SO_SNDBUFFORCE");
		set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, buffer, "SO_RCVBUFFORCE");
	}
	struct sockaddr_storage storage;
	socklen_t length = socket_address(family, address, port, &storage);
	if (connect(fd, (struct sockaddr *)&storage, length) != 0) die("connect");
	return fd;
}

/* A connection through the listener L: *ours is the connecting end, *peer the accepted one, both with buffers of
 * the given size (the accepted end inherits the listener's, so they are set on it after accept, and a small receive
 * buffer on the connecting end must be set before the handshake to keep its window small). */
static void pair(int L, int buffer, int *ours, int *peer)
{
	*ours = client(AF_INET, "127.0.0.1", port_of(L), buffer);
	*peer = accept(L, NULL, NULL);
	if (*peer < 0) die("accept");
	if (buffer > 0) {
		set_int(*peer, SOL_SOCKET, SO_SNDBUFFORCE, buffer, "SO_SNDBUFFORCE");
		set_int(*peer, SOL_SOCKET, SO_RCVBUFFORCE, buffer, "SO_RCVBUFFORCE");
	}
}

/* Byte i of the stream named by seed. */
static unsigned char pattern(long i, int seed)
{
	return (unsigned char)(i * 7 + seed + (i >> 8));
}

/* Writes the pattern until the connection takes no more (or limit bytes), returns how many bytes were written. */
static long fill(int fd, int seed, long limit)
{
	static unsigned char chunk[65536];
	long written = 0;
	set_blocking(fd, 0);
	for (;;) {
		size_t size = sizeof(chunk);
		if (limit > 0 && (long)size > limit - written) size = (size_t)(limit - written);
		if (size == 0) break;
		for (size_t i = 0; i < size; i++) chunk[i] = pattern(written + (long)i, seed);
		ssize_t n = write(fd, chunk, size);
		if (n < 0 && errno == EAGAIN) {
			/* A full queue may still drain into the peer's receive queue: wait a little before believing it. */
			struct pollfd p = { fd, POLLOUT, 0 };
			if (poll(&p, 1, 200) > 0) continue;
			break;
		}
		if (n < 0) die("write(fill)");
		written += n;
	}
	set_blocking(fd, 1);
	return written;
}

/* Reads `expected` bytes of the pattern from fd and, when eof is set, then end of file. */
static int drain(int fd, int seed, long expected, int eof, const char *what)
{
	static unsigned char chunk[65536];
	long got = 0;
	struct pollfd p = { fd, POLLIN, 0 };
	while (got < expected) {
		if (poll(&p, 1, 10000) <= 0) return fail("%s: no data after %ld of %ld bytes", what, got, expected);
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) return fail("%s: read after %ld bytes: %s", what, got, strerror(errno));
		if (n == 0) return fail("%s: end of file after %ld of %ld bytes", what, got, expected);
		for (ssize_t i = 0; i < n; i++)
			if (got + i < expected && chunk[i] != pattern(got + i, seed))
				return fail("%s: byte %ld differs", what, got + i);
		got += n;
		if (got > expected) return fail("%s: %ld bytes where %ld were expected", what, got, expected);
	}
	if (!eof) return 1;
	if (poll(&p, 1, 10000) <= 0) return fail("%s: no end of file after the data", what);
	ssize_t n = read(fd, chunk, sizeof(chunk));
	return n == 0 ? 1 : fail("%s: %zd more bytes where end of file was expected", what, n);
}

static int expect_text(int fd, const char *text, const char *what)
{
	char buffer[64] = { 0 };
	size_t length = strlen(text);
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, 10000) <= 0) return fail("%s: nothing arrived", what);
	ssize_t n = recv(fd, buffer, length, MSG_WAITALL);
	return n == (ssize_t)length && memcmp(buffer, text, length) == 0 ? 1 : fail("%s: read %zd bytes '%s'", what, n, buffer);
}

static int send_text(int fd, const char *text, const char *what)
{
	ssize_t n = write(fd, text, strlen(text));
	return n == (ssize_t)strlen(text) ? 1 : fail("%s: write: %s", what, n < 0 ? strerror(errno) : "short");
}

static int expect_eof(int fd, const char *what)
{
	char c;
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, 10000) <= 0) return fail("%s: no end of file", what);
	ssize_t n = read(fd, &c, 1);
	return n == 0 ? 1 : fail("%s: read %zd where end of file was expected", what, n);
}

/* ---- the cases ---- */

static int closewait, closewait_peer;
static int finwait1, finwait1_peer;
static long finwait1_bytes;
static int lastack, lastack_peer;
static long lastack_bytes;
static int closing, closing_peer;
static long closing_bytes;
static int big, big_peer;
static long big_bytes, big_back;
static int big_sndbuf, big_rcvbuf;

static void make_half_closed(int L)
{
	pair(L, 0, &closewait, &closewait_peer);
	if (write(closewait_peer, "peer-data", 9) != 9) die("write(closewait)");
	if (shutdown(closewait_peer, SHUT_WR) != 0) die("shutdown(closewait)");
	await_state(closewait, TCP_CLOSE_WAIT, "closewait");
	await_state(closewait_peer, TCP_FIN_WAIT2, "closewait peer");

	pair(L, SMALL_BUFFER, &finwait1, &finwait1_peer);
	finwait1_bytes = fill(finwait1, 1, 0);
	if (shutdown(finwait1, SHUT_WR) != 0) die("shutdown(finwait1)");
	await_state(finwait1, TCP_FIN_WAIT1, "finwait1");

	pair(L, SMALL_BUFFER, &lastack, &lastack_peer);
	if (shutdown(lastack_peer, SHUT_WR) != 0) die("shutdown(lastack peer)");
	await_state(lastack, TCP_CLOSE_WAIT, "lastack before");
	lastack_bytes = fill(lastack, 2, 0);
	if (shutdown(lastack, SHUT_WR) != 0) die("shutdown(lastack)");
	await_state(lastack, TCP_LAST_ACK, "lastack");
	await_state(lastack_peer, TCP_FIN_WAIT2, "lastack peer");

	pair(L, SMALL_BUFFER, &closing, &closing_peer);
	closing_bytes = fill(closing, 3, 0);
	if (shutdown(closing, SHUT_WR) != 0) die("shutdown(closing)");
	await_state(closing, TCP_FIN_WAIT1, "closing before");
	if (shutdown(closing_peer, SHUT_WR) != 0) die("shutdown(closing peer)");
	await_state(closing, TCP_CLOSING, "closing");
	await_state(closing_peer, TCP_FIN_WAIT2, "closing peer");
}

static int check_half_closed(void)
{
	/* Every state first: reading changes them. */
	if (!expect_state(closewait, TCP_CLOSE_WAIT, "closewait") || !expect_state(closewait_peer, TCP_FIN_WAIT2, "closewait-peer") ||
	    !expect_state(finwait1, TCP_FIN_WAIT1, "finwait1") || !expect_state(finwait1_peer, TCP_ESTABLISHED, "finwait1-peer") ||
	    !expect_state(lastack, TCP_LAST_ACK, "lastack") || !expect_state(lastack_peer, TCP_FIN_WAIT2, "lastack-peer") ||
	    !expect_state(closing, TCP_CLOSING, "closing") || !expect_state(closing_peer, TCP_FIN_WAIT2, "closing-peer"))
		return 0;
	return expect_text(closewait, "peer-data", "closewait-data") && expect_eof(closewait, "closewait-eof") &&
	       send_text(closewait, "reply", "closewait-reply") && expect_text(closewait_peer, "reply", "closewait-peer-reply") &&
	       shutdown(closewait, SHUT_WR) == 0 && expect_eof(closewait_peer, "closewait-peer-eof") &&
	       send_text(finwait1_peer, "answer", "finwait1-answer") &&
	       drain(finwait1_peer, 1, finwait1_bytes, 1, "finwait1-peer-data") && expect_text(finwait1, "answer", "finwait1-answer-arrives") &&
	       drain(lastack_peer, 2, lastack_bytes, 1, "lastack-peer-data") && expect_eof(lastack, "lastack-eof") &&
	       drain(closing_peer, 3, closing_bytes, 1, "closing-peer-data") && expect_eof(closing, "closing-eof");
}

static void make_big(int L)
{
	pair(L, BIG_BUFFER, &big, &big_peer);
	big_sndbuf = get_int(big, SOL_SOCKET, SO_SNDBUF);
	big_rcvbuf = get_int(big_peer, SOL_SOCKET, SO_RCVBUF);
	big_bytes = fill(big, 4, 0);
	big_back = fill(big_peer, 5, BACK_BYTES);
	if (big_back < BACK_BYTES) {
		fprintf(stderr, "big: only %ld and %ld bytes queued\n", big_bytes, big_back);
		exit(1);
	}
	/* Megabytes must wait on both sides of the connection: unsent or unacknowledged, and received unread. */
	int outq = 0, inq = 0;
	for (int i = 0; i < 200; i++) {
		ioctl(big, TIOCOUTQ, &outq);
		ioctl(big_peer, FIONREAD, &inq);
		if (outq > (1 << 20) && inq > (1 << 20)) break;
		usleep(10000);
	}
	if (outq <= (1 << 20) || inq <= (1 << 20)) {
		fprintf(stderr, "big: %d bytes in the send queue, %d in the receive queue\n", outq, inq);
		exit(1);
	}
	FILE *queued = fopen("queued", "w");
	fprintf(queued, "%ld %d %d\n", big_bytes, outq, inq);
	fclose(queued);
}

static int check_big(void)
{
	if (get_int(big, SOL_SOCKET, SO_SNDBUF) != big_sndbuf) return fail("big-sndbuf: %d where %d", get_int(big, SOL_SOCKET, SO_SNDBUF), big_sndbuf);
	if (get_int(big_peer, SOL_SOCKET, SO_RCVBUF) != big_rcvbuf) return fail("big-rcvbuf: %d where %d", get_int(big_peer, SOL_SOCKET, SO_RCVBUF), big_rcvbuf);
	return expect_state(big, TCP_ESTABLISHED, "big") && drain(big_peer, 4, big_bytes, 0, "big-data") &&
	       drain(big, 5, big_back, 0, "big-back") && send_text(big_peer, "more", "big-more") && expect_text(big, "more", "big-more-arrives");
}

/* ---- options of sockets never connected ---- */

struct option { int level, name, value; const char *what; };

static const struct option options4[] = {
	{ SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR" },  { SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE" },
	{ SOL_TCP, TCP_KEEPIDLE, 77, "TCP_KEEPIDLE" },     { SOL_TCP, TCP_KEEPINTVL, 11, "TCP_KEEPINTVL" },
	{ SOL_TCP, TCP_KEEPCNT, 5, "TCP_KEEPCNT" },        { SOL_TCP, TCP_NODELAY, 1, "TCP_NODELAY" },
	{ SOL_TCP, TCP_CORK, 1, "TCP_CORK" },              { SOL_SOCKET, SO_RCVBUFFORCE, 3 << 20, "SO_RCVBUFFORCE" },
	{ SOL_SOCKET, SO_SNDBUFFORCE, 5 << 20, "SO_SNDBUFFORCE" }, { SOL_IP, IP_TOS, 0x28, "IP_TOS" },
	{ SOL_SOCKET, SO_MARK, 4242, "SO_MARK" },          { SOL_SOCKET, SO_PRIORITY, 5, "SO_PRIORITY" },
	{ SOL_TCP, TCP_USER_TIMEOUT, 12345, "TCP_USER_TIMEOUT" },
};

static const struct option options6[] = {
	{ SOL_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY" },       { SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE" },
	{ SOL_TCP, TCP_KEEPIDLE, 1234, "TCP_KEEPIDLE" },   { SOL_TCP, TCP_NODELAY, 1, "TCP_NODELAY" },
	{ SOL_SOCKET, SO_RCVBUFFORCE, 1 << 20, "SO_RCVBUFFORCE" }, { SOL_SOCKET, SO_PRIORITY, 3, "SO_PRIORITY" },
	{ SOL_TCP, TCP_USER_TIMEOUT, 999, "TCP_USER_TIMEOUT" },
};

#define COUNT(a) (int)(sizeof(a) / sizeof((a)[0]))

static int unconnected4, unconnected6;
/* What getsockopt read after setting, per option (the buffer sizes read back doubled), then SO_SNDBUF/SO_RCVBUF. */
static int read4[COUNT(options4)], read6[COUNT(options6)];
static struct linger linger4;
static char congestion4[16], congestion6[16];

/* The option as getsockopt names it: the *FORCE setters read back through SO_SNDBUF/SO_RCVBUF. */
static int read_name(int name)
{
	return name == SO_RCVBUFFORCE ? SO_RCVBUF : name == SO_SNDBUFFORCE ? SO_SNDBUF : name;
}

static void set_options(int fd, const struct option *options, int count, int *read, const char *congestion, char *readCongestion)
{
	for (int i = 0; i < count; i++) {
		set_int(fd, options[i].level, options[i].name, options[i].value, options[i].what);
		read[i] = get_int(fd, options[i].level, read_name(options[i].name));
	}
	if (setsockopt(fd, SOL_TCP, TCP_CONGESTION, congestion, strlen(congestion)) != 0) die("TCP_CONGESTION");
	socklen_t length = 16;
	getsockopt(fd, SOL_TCP, TCP_CONGESTION, readCongestion, &length);
}

static int check_options(int fd, const struct option *options, int count, const int *read, const char *congestion, const char *what)
{
	for (int i = 0; i < count; i++) {
		int now = get_int(fd, options[i].level, read_name(options[i].name));
		if (now != read[i]) return fail("%s-%s: %d where %d", what, options[i].what, now, read[i]);
	}
	char now[16] = { 0 };
	socklen_t length = sizeof(now);
	getsockopt(fd, SOL_TCP, TCP_CONGESTION, now, &length);
	if (strcmp(now, congestion) != 0) return fail("%s-TCP_CONGESTION: '%s' where '%s'", what, now, congestion);
	return expect_state(fd, TCP_CLOSE, what);
}

static void make_options(void)
{
	unconnected4 = socket(AF_INET, SOCK_STREAM, 0);
	if (unconnected4 < 0) die("socket(unconnected4)");
	set_options(unconnected4, options4, COUNT(options4), read4, "reno", congestion4);
	linger4 = (struct linger) { 1, 9 };
	if (setsockopt(unconnected4, SOL_SOCKET, SO_LINGER, &linger4, sizeof(linger4)) != 0) die("SO_LINGER");

	unconnected6 = socket(AF_INET6, SOCK_STREAM, 0);
	if (unconnected6 < 0) die("socket(unconnected6)");
	set_options(unconnected6, options6, COUNT(options6), read6, "bbr", congestion6);
	struct sockaddr_in6 loopback = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	if (bind(unconnected6, (struct sockaddr *)&loopback, sizeof(loopback)) != 0) die("bind(unconnected6)");
}

static int check_unconnected(void)
{
	struct linger now = { 0 };
	socklen_t length = sizeof(now);
	getsockopt(unconnected4, SOL_SOCKET, SO_LINGER, &now, &length);
	if (now.l_onoff != linger4.l_onoff || now.l_linger != linger4.l_linger)
		return fail("options4-SO_LINGER: %d,%d", now.l_onoff, now.l_linger);
	if (port_of(unconnected6) == 0) return fail("options6: no longer bound");
	return check_options(unconnected4, options4, COUNT(options4), read4, congestion4, "options4") &&
	       check_options(unconnected6, options6, COUNT(options6), read6, congestion6, "options6");
}

/* ---- IPv4-mapped IPv6 ---- */

static int v6listener, v4client, v6accepted, v6client, v4accepted;

static void make_tcp4v6(int L)
{
	v6listener = listener(AF_INET6, "::", 0, 0);
	v4client = client(AF_INET, "127.0.0.1", port_of(v6listener), 0);
	v6accepted = accept(v6listener, NULL, NULL);
	v6client = client(AF_INET6, "::ffff:127.0.0.1", port_of(L), 0);
	v4accepted = accept(L, NULL, NULL);
	if (v6accepted < 0 || v4accepted < 0) die("accept(tcp4v6)");
	if (write(v4client, "to-mapped", 9) != 9 || write(v6accepted, "from-mapped", 11) != 11 ||
	    write(v6client, "mapped-out", 10) != 10 || write(v4accepted, "mapped-in", 9) != 9)
		die("write(tcp4v6)");
}

static int check_tcp4v6(void)
{
	struct sockaddr_in6 peer;
	socklen_t length = sizeof(peer);
	if (getpeername(v6accepted, (struct sockaddr *)&peer, &length) != 0 || peer.sin6_family != AF_INET6 ||
	    !IN6_IS_ADDR_V4MAPPED(&peer.sin6_addr))
		return fail("tcp4v6: the accepted IPv6 socket's peer is not ::ffff:127.0.0.1");
	if (get_int(v6listener, SOL_IPV6, IPV6_V6ONLY) != 0) return fail("tcp4v6: the listener became V6ONLY");
	if (!expect_state(v6accepted, TCP_ESTABLISHED, "tcp4v6-accepted") || !expect_state(v6client, TCP_ESTABLISHED, "tcp4v6-client") ||
	    !expect_text(v6accepted, "to-mapped", "tcp4v6-to-mapped") || !expect_text(v4client, "from-mapped", "tcp4v6-from-mapped") ||
	    !expect_text(v4accepted, "mapped-out", "tcp4v6-mapped-out") || !expect_text(v6client, "mapped-in", "tcp4v6-mapped-in") ||
	    !send_text(v6client, "again", "tcp4v6-again") || !expect_text(v4accepted, "again", "tcp4v6-again-arrives") ||
	    !send_text(v4client, "again", "tcp4v6-again4") || !expect_text(v6accepted, "again", "tcp4v6-again4-arrives"))
		return 0;
	int fresh = client(AF_INET, "127.0.0.1", port_of(v6listener), 0);
	int accepted = accept(v6listener, NULL, NULL);
	int ok = accepted >= 0 && send_text(fresh, "new", "tcp4v6-new") && expect_text(accepted, "new", "tcp4v6-new-arrives");
	close(fresh);
	close(accepted);
	return ok ? 1 : fail("tcp4v6: the IPv6 listener does not accept IPv4 any more");
}

/* ---- SO_REUSEPORT group ---- */

static int group[REUSEPORT_LISTENERS], group_port;

static void make_reuseport(void)
{
	group[0] = listener(AF_INET, "127.0.0.1", 0, 1);
	group_port = port_of(group[0]);
	for (int i = 1; i < REUSEPORT_LISTENERS; i++) group[i] = listener(AF_INET, "127.0.0.1", group_port, 1);
}

static int check_reuseport(void)
{
	for (int i = 0; i < REUSEPORT_LISTENERS; i++) {
		if (port_of(group[i]) != group_port) return fail("reuseport: listener %d is on port %d, not %d", i, port_of(group[i]), group_port);
		if (get_int(group[i], SOL_SOCKET, SO_REUSEPORT) != 1) return fail("reuseport: listener %d lost SO_REUSEPORT", i);
		if (!expect_state(group[i], TCP_LISTEN, "reuseport")) return 0;
	}
	int accepted[REUSEPORT_LISTENERS] = { 0 };
	for (int c = 0; c < REUSEPORT_CONNECTIONS; c++) {
		int fd = client(AF_INET, "127.0.0.1", group_port, 0);
		struct pollfd p[REUSEPORT_LISTENERS];
		for (int i = 0; i < REUSEPORT_LISTENERS; i++) p[i] = (struct pollfd) { group[i], POLLIN, 0 };
		if (poll(p, REUSEPORT_LISTENERS, 10000) <= 0) return fail("reuseport: connection %d was accepted by none", c);
		for (int i = 0; i < REUSEPORT_LISTENERS; i++) {
			if (!(p[i].revents & POLLIN)) continue;
			int a = accept(group[i], NULL, NULL);
			if (a >= 0) accepted[i]++;
			close(a);
		}
		close(fd);
	}
	int total = 0;
	for (int i = 0; i < REUSEPORT_LISTENERS; i++) total += accepted[i];
	return total == REUSEPORT_CONNECTIONS ? 1 : fail("reuseport: %d of %d connections accepted", total, REUSEPORT_CONNECTIONS);
}

static volatile sig_atomic_t check_requested;

static void on_usr1(int signal)
{
	(void)signal;
	check_requested = 1;
}

int main(int argc, char **argv)
{
	if (argc != 2 || chdir(argv[1]) != 0) die("usage: tcpstates WORKDIR");
	FILE *log = fopen("tcpstates.log", "a");
	if (!log) die("log");
	setvbuf(log, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);

	int L = listener(AF_INET, "127.0.0.1", 0, 0);
	make_half_closed(L);
	make_big(L);
	make_options();
	make_tcp4v6(L);
	make_reuseport();

	signal(SIGUSR1, on_usr1);
	announce_ready(getpid());
	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		failure[0] = 0;
		if (check_half_closed() && check_big() && check_unconnected() && check_tcp4v6() && check_reuseport())
			fprintf(log, "OK pid=%d\n", getpid());
		else
			fprintf(log, "FAIL %s pid=%d\n", failure[0] ? failure : "?", getpid());
	}
}
