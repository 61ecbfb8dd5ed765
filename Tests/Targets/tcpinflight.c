/* tcpinflight WORKDIR FAMILY CLIENTS
 * A test target with a TCP listener (FAMILY 4: 127.0.0.1, 6: ::1; port in WORKDIR/port) that has connections done
 * by the kernel and not accepted yet (CRIU's in-flight connections, Checkpoint-Process -SkipInFlight):
 *   CLIENTS inside   this process connects 2 clients itself, each of which sends "hello-N" (N = 1, 2); their
 *                    accepted ends wait in the listener's queue. WORKDIR/ready is written once the queue holds both.
 *   CLIENTS outside  the test connects them (and sends the same); WORKDIR/ready is written at once.
 * On SIGUSR1 (after a checkpoint with -SkipInFlight and a restore) it checks that the listener still listens with
 * an empty queue (an accept gives EAGAIN: the pending connections were dropped, none comes back), that each inside
 * client's connection (restored with -TcpEstablished) was reset by the restored listener (ECONNRESET on a write, or
 * on the read after it; state CLOSE), and that the listener accepts a new connection of its own and serves it (an exchange both ways).
 * On SIGUSR2 (the original, left running or after a refused checkpoint) it checks that both pending connections are
 * still there, in order: each is accepted, its "hello-N" read, "reply-N" sent back (and read by an inside client).
 * Each check appends "OK pid=P" or "FAIL what pid=P" to WORKDIR/tcpinflight.log. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "selfcheck.h"

#define PENDING 2

static char failure[512];
static volatile sig_atomic_t requested;
static int family, listener, clients[PENDING], inside;

static int fail(const char *format, ...)
{
	if (failure[0]) return 0;
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(failure, sizeof(failure), format, arguments);
	va_end(arguments);
	return 0;
}

static void on_signal(int signal) { requested = signal; }

static socklen_t loopback(struct sockaddr_storage *address, int port)
{
	memset(address, 0, sizeof(*address));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)address;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*in);
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)address;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	in6->sin6_addr = in6addr_loopback;
	return sizeof(*in6);
}

static int port_of(int fd)
{
	struct sockaddr_storage address;
	socklen_t length = sizeof(address);
	if (getsockname(fd, (struct sockaddr *)&address, &length)) die("getsockname");
	return ntohs(family == AF_INET ? ((struct sockaddr_in *)&address)->sin_port : ((struct sockaddr_in6 *)&address)->sin6_port);
}

static int connect_client(void)
{
	struct sockaddr_storage address;
	socklen_t length = loopback(&address, port_of(listener));
	int fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&address, length)) return -1;
	return fd;
}

static struct tcp_info info_of(int fd)
{
	struct tcp_info info;
	socklen_t length = sizeof(info);
	memset(&info, 0, sizeof(info));
	getsockopt(fd, SOL_TCP, TCP_INFO, &info, &length);
	return info;
}

/* Waits up to 10 s for FD to be readable (or in error). */
static int readable(int fd)
{
	struct pollfd poll_fd = { .fd = fd, .events = POLLIN };
	return poll(&poll_fd, 1, 10000) == 1;
}

static int read_exactly(int fd, const char *expected, const char *what)
{
	char buffer[32] = { 0 };
	size_t length = strlen(expected), got = 0;
	while (got < length) {
		if (!readable(fd)) return fail("%s: nothing to read in 10 s (%zu of %zu bytes)", what, got, length);
		ssize_t n = read(fd, buffer + got, length - got);
		if (n <= 0) return fail("%s: read gave %zd (%s) after %zu bytes", what, n, n < 0 ? strerror(errno) : "end of file", got);
		got += n;
	}
	return memcmp(buffer, expected, length) == 0 || fail("%s: read \"%s\", expected \"%s\"", what, buffer, expected);
}

static int send_text(int fd, const char *text, const char *what)
{
	return write(fd, text, strlen(text)) == (ssize_t)strlen(text) || fail("%s: write: %s", what, strerror(errno));
}

/* Accepts one connection from the listener (non-blocking); -1 with errno when there is none. */
static int accept_one(void) { return accept4(listener, NULL, NULL, SOCK_NONBLOCK); }

/* SIGUSR2: the original still has both pending connections, in order, with their data. */
static int check_original(void)
{
	struct tcp_info info = info_of(listener);
	if (info.tcpi_unacked != PENDING) return fail("the listener has %u connection(s) waiting, expected %d", info.tcpi_unacked, PENDING);
	for (int i = 0; i < PENDING; i++) {
		char what[64], hello[16], reply[16];
		snprintf(what, sizeof(what), "pending connection %d", i + 1);
		snprintf(hello, sizeof(hello), "hello-%d", i + 1);
		snprintf(reply, sizeof(reply), "reply-%d", i + 1);
		int accepted = accept_one();
		if (accepted < 0) return fail("%s: accept: %s", what, strerror(errno));
		if (!read_exactly(accepted, hello, what) || !send_text(accepted, reply, what)) return 0;
		if (inside && !read_exactly(clients[i], reply, what)) return 0;
		close(accepted);
	}
	return 1;
}

/* SIGUSR1: restored with the pending connections dropped. */
static int check_restored(void)
{
	struct tcp_info info = info_of(listener);
	if (info.tcpi_state != TCP_LISTEN) return fail("the listener is in state %u, not LISTEN", info.tcpi_state);
	int stray = accept_one();
	if (stray >= 0) return fail("a dropped connection came back: accept gave fd %d", stray);
	if (errno != EAGAIN) return fail("accept on the empty queue: %s (expected EAGAIN)", strerror(errno));
	for (int i = 0; inside && i < PENDING; i++) {
		/* Its peer (the accepted end that was never accepted) is gone, so the listener answers whatever reaches it
		 * with a reset: the window probe the kernel sends as the restore takes the socket out of repair mode (the
		 * write fails then), or this byte if the lock still held that probe back (the read fails). */
		if (write(clients[i], "x", 1) == 1) {
			char byte;
			if (!readable(clients[i])) return fail("old client %d: no reset in 10 s", i + 1);
			ssize_t n = read(clients[i], &byte, 1);
			if (n != -1 || errno != ECONNRESET) return fail("old client %d: read gave %zd (%s), expected ECONNRESET", i + 1, n, n < 0 ? strerror(errno) : "data or end of file");
		} else if (errno != ECONNRESET) {
			return fail("old client %d: write: %s (expected success or ECONNRESET)", i + 1, strerror(errno));
		}
		if (info_of(clients[i]).tcpi_state != TCP_CLOSE) return fail("old client %d: state %u after the reset, not CLOSE", i + 1, info_of(clients[i]).tcpi_state);
	}
	int client = connect_client();
	if (client < 0) return fail("a new connection to the restored listener: %s", strerror(errno));
	if (!readable(listener)) return fail("the new connection was not queued in 10 s");
	int accepted = accept_one();
	if (accepted < 0) return fail("accepting the new connection: %s", strerror(errno));
	int served = send_text(client, "new-request", "new connection") && read_exactly(accepted, "new-request", "new connection (server side)") &&
		send_text(accepted, "new-answer", "new connection (server side)") && read_exactly(client, "new-answer", "new connection");
	close(accepted);
	close(client);
	return served;
}

int main(int argc, char **argv)
{
	if (argc != 4 || chdir(argv[1]) != 0) die("usage: tcpinflight WORKDIR 4|6 inside|outside");
	family = strcmp(argv[2], "6") == 0 ? AF_INET6 : AF_INET;
	inside = strcmp(argv[3], "inside") == 0;
	FILE *log = fopen("tcpinflight.log", "a");
	if (!log) die("log");
	setvbuf(log, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);

	struct sockaddr_storage address;
	socklen_t length = loopback(&address, 0);
	listener = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&address, length) || listen(listener, 8)) die("listener");
	FILE *port = fopen("port", "w");
	if (!port) die("port");
	fprintf(port, "%d\n", port_of(listener));
	fclose(port);
	if (inside) {
		for (int i = 0; i < PENDING; i++) {
			char hello[16];
			snprintf(hello, sizeof(hello), "hello-%d", i + 1);
			if ((clients[i] = connect_client()) < 0 || write(clients[i], hello, strlen(hello)) != (ssize_t)strlen(hello)) die("client");
		}
		for (int tries = 0; info_of(listener).tcpi_unacked != PENDING; tries++) {
			if (tries == 1000) die("the connections were not queued in 10 s");
			usleep(10000);
		}
	}

	signal(SIGUSR1, on_signal);
	signal(SIGUSR2, on_signal);
	announce_ready(getpid());
	for (;;) {
		pause();
		int which = requested;
		requested = 0;
		if (!which) continue;
		failure[0] = 0;
		if (which == SIGUSR1 ? check_restored() : check_original())
			fprintf(log, "OK pid=%d\n", getpid());
		else
			fprintf(log, "FAIL %s pid=%d\n", failure[0] ? failure : "?", getpid());
	}
}
