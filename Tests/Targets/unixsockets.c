/* unixsockets WORKDIR
 * A tree of 4 processes holding unix sockets of every kind, with data waiting in them, that checks them after a
 * restore. The root forks A, B and C; at the checkpoint:
 *   stream pair   root <-> A: 2000 bytes wait for A (it read 1000 of 3000), 1000 for the root (it read 500 of 1500)
 *   dgram pair    root <-> A: datagrams of 1, 17, 0, 300 and 4096 bytes wait for A, of 2, 33 and 1000 for the root
 *                 (the root's end is non-blocking)
 *   seqpacket     root <-> A: records of 5, 0, 40 and 3 bytes wait for A, of 7 and 70 for the root
 *   listener      the root listens on WORKDIR/listen.sock (backlog 5); B, bound to WORKDIR/client.sock, is
 *                 connected and accepted (700 bytes wait for the root, 200 of 300 for B); C is connected and
 *                 waits in the backlog, not accepted
 *   bound dgram   the root's WORKDIR/dgram.sock holds datagrams of 30 (from an unnamed socket of the root), 10,
 *                 20 and 40 bytes (from B's socket bound to WORKDIR/sender.sock)
 *   abstract      C's datagram socket bound to the abstract name "criups-usk-ROOTPID" holds datagrams of 11 and
 *                 22 bytes from the root's socket connected to it
 *   half shut     root <-> B stream pair: the root wrote 123 bytes and shut down its writing side (SO_PASSCRED on)
 *   idle          the root's stream socket bound to WORKDIR/idle.sock, neither listening nor connected
 * On SIGUSR1 every process checks, the first time, that exactly the bytes and records above arrive in order and
 * nothing more, with the senders' names, socket names, peer names, options and flags as they were; then (every
 * time) that each connection still carries data both ways and that the listener still accepts. The root appends
 * "OK processes=4 pid=P" or "CORRUPT <process>:<what> pid=P" to WORKDIR/unixsockets.log.
 *
 * unixsockets WORKDIR server PATH: listens on PATH and echoes what each accepted connection sends (one at a time).
 * unixsockets WORKDIR client PATH: connects to PATH; on SIGUSR1 sends a line and logs "OK echo pid=P" once it
 * comes back.
 * Each writes WORKDIR/ready (its pid) once set up. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "selfcheck.h"

#define TIMEOUT_MS 3000
enum { A, B, C, CHILDREN };

static char bad[100];
static volatile sig_atomic_t check_requested;
static void on_usr1(int s) { (void)s; check_requested = 1; }

static int fail(const char *format, ...)
{
	if (!bad[0]) {
		va_list args;
		va_start(args, format);
		vsnprintf(bad, sizeof(bad), format, args);
		va_end(args);
	}
	return -1;
}

static unsigned char pat(int tag, int i) { return (unsigned char)(tag * 31 + i * 7 + (i >> 8)); }
static void fill(unsigned char *buf, int tag, int from, int n) { for (int i = 0; i < n; i++) buf[i] = pat(tag, from + i); }
static int matches(const unsigned char *buf, int tag, int from, int n)
{
	for (int i = 0; i < n; i++) if (buf[i] != pat(tag, from + i)) return 0;
	return 1;
}

static int readable(int fd) { struct pollfd p = { fd, POLLIN, 0 }; return poll(&p, 1, TIMEOUT_MS) == 1; }

/* Sends N pattern bytes TAG from offset FROM, whole. */
static int send_pattern(int fd, int tag, int from, int n, const char *what)
{
	unsigned char buf[8192];
	fill(buf, tag, from, n);
	for (int done = 0; done < n;) {
		ssize_t r = send(fd, buf + done, n - done, MSG_NOSIGNAL);
		if (r <= 0) return fail("%s-send-%d", what, errno);
		done += r;
	}
	return 0;
}

/* Receives exactly N stream bytes with pattern TAG from offset FROM; with EXACT, checks nothing else is waiting. */
static int recv_pattern(int fd, int tag, int from, int n, int exact, const char *what)
{
	unsigned char buf[8192];
	for (int done = 0; done < n;) {
		if (!readable(fd)) return fail("%s-timeout-after-%d", what, done);
		ssize_t r = recv(fd, buf, n - done < (int)sizeof(buf) ? n - done : (int)sizeof(buf), MSG_DONTWAIT);
		if (r <= 0) return fail("%s-recv-%zd-%d-after-%d", what, r, errno, done);
		if (!matches(buf, tag, from + done, r)) return fail("%s-data-at-%d", what, done);
		done += r;
	}
	int more = 0;
	if (exact && (ioctl(fd, FIONREAD, &more) || more)) return fail("%s-%d-bytes-too-many", what, more);
	return 0;
}

/* Sends one message (datagram or record) of N pattern bytes TAG, to NAME when given. */
static int send_message(int fd, int tag, int n, const struct sockaddr_un *to, socklen_t tolen, const char *what)
{
	unsigned char buf[8192];
	fill(buf, tag, 0, n);
	ssize_t r = to ? sendto(fd, buf, n, MSG_NOSIGNAL, (const struct sockaddr *)to, tolen) : send(fd, buf, n, MSG_NOSIGNAL);
	return r == n ? 0 : fail("%s-send-%d", what, errno);
}

/* Receives one message of N pattern bytes TAG; with FROM, checks the sender's name (NULL name: unnamed). */
static int recv_message(int fd, int tag, int n, int check_from, const char *from, int fromlen, const char *what)
{
	unsigned char buf[8192];
	struct sockaddr_un addr;
	socklen_t len = sizeof(addr);
	if (!readable(fd)) return fail("%s-%d-timeout", what, n);
	ssize_t r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&addr, &len);
	if (r != n) return fail("%s-%d-got-%zd-%d", what, n, r, errno);
	if (!matches(buf, tag, 0, n)) return fail("%s-%d-data", what, n);
	/* An unnamed sender's address is empty, or just the family. */
	if (check_from && (fromlen ? len != (socklen_t)(sizeof(sa_family_t) + fromlen) || memcmp(addr.sun_path, from, fromlen) : len > sizeof(sa_family_t)))
		return fail("%s-%d-sender", what, n);
	return 0;
}

static int nothing_waits(int fd, const char *what)
{
	char c;
	ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
	return r < 0 && errno == EAGAIN ? 0 : fail("%s-more-queued-%zd", what, r);
}

static socklen_t address(struct sockaddr_un *addr, const char *name, int len)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	memcpy(addr->sun_path, name, len);
	return sizeof(sa_family_t) + len;
}

/* getsockname or getpeername must give NAME (LEN bytes; a path with its NUL; 0: unnamed). */
static int named(int fd, int peer, const char *name, int len, const char *what)
{
	struct sockaddr_un addr;
	socklen_t got = sizeof(addr);
	if ((peer ? getpeername(fd, (struct sockaddr *)&addr, &got) : getsockname(fd, (struct sockaddr *)&addr, &got)) != 0)
		return fail("%s-%s-%d", what, peer ? "getpeername" : "getsockname", errno);
	if (got != sizeof(sa_family_t) + len || memcmp(addr.sun_path, name, len)) return fail("%s-%s", what, peer ? "peername" : "sockname");
	return 0;
}

static int option(int fd, int name) { int v = -1; socklen_t l = sizeof(v); getsockopt(fd, SOL_SOCKET, name, &v, &l); return v; }

/* The sockets and what the processes remember of them. */
static int stream[2], dgram[2], seq[2], half[2], listener, accepted, client, pending, recv_sk, named_sender, unnamed_sender,
	abstract_sk, to_abstract, idle, taken = -1;
static char listen_path[108], client_path[108], dgram_path[108], sender_path[108], idle_path[108], abstract_name[108];
static int listen_len, client_len, dgram_len, sender_len, idle_len, abstract_len;
static int stream_sndbuf, recv_rcvbuf;
static const int to_a_dgrams[] = { 1, 17, 0, 300, 4096 }, from_a_dgrams[] = { 2, 33, 1000 };
static const int to_a_records[] = { 5, 0, 40, 3 }, from_a_records[] = { 7, 70 };

static void path_name(char *out, int *len, const char *dir, const char *file)
{
	snprintf(out, 108, "%s/%s", dir, file);
	*len = strlen(out) + 1;
}

static int bind_name(int fd, const char *name, int len)
{
	struct sockaddr_un addr;
	socklen_t l = address(&addr, name, len);
	return bind(fd, (struct sockaddr *)&addr, l);
}

static int connect_name(int fd, const char *name, int len)
{
	struct sockaddr_un addr;
	socklen_t l = address(&addr, name, len);
	return connect(fd, (struct sockaddr *)&addr, l);
}

/* ---- checks, per process: phase 1 (what waited at the checkpoint, once), phase 2 (traffic, every time) ---- */

static void check_a(int phase)
{
	if (phase == 1) {
		if (recv_pattern(stream[1], 'a', 1000, 2000, 1, "stream")) return;
		for (int i = 0; i < 5; i++) if (recv_message(dgram[1], 'D' + i, to_a_dgrams[i], 0, NULL, 0, "dgram")) return;
		if (nothing_waits(dgram[1], "dgram")) return;
		for (int i = 0; i < 4; i++) if (recv_message(seq[1], 'S' + i, to_a_records[i], 0, NULL, 0, "seqpacket")) return;
		if (nothing_waits(seq[1], "seqpacket")) return;
		(void)(named(stream[1], 0, "", 0, "stream") || named(stream[1], 1, "", 0, "stream"));
		return;
	}
	(void)(send_pattern(stream[1], 'n', 0, 100, "stream2") || recv_pattern(stream[1], 'm', 0, 100, 0, "stream2")
		|| send_message(dgram[1], 'q', 77, NULL, 0, "dgram2") || recv_message(dgram[1], 'p', 77, 0, NULL, 0, "dgram2")
		|| send_message(seq[1], 'v', 9, NULL, 0, "seqpacket2") || recv_message(seq[1], 'u', 9, 0, NULL, 0, "seqpacket2"));
}

static void check_b(int phase)
{
	if (phase == 1) {
		if (recv_pattern(client, 'd', 100, 200, 1, "client")) return;
		if (named(client, 0, client_path, client_len, "client") || named(client, 1, listen_path, listen_len, "client")) return;
		if (named(named_sender, 0, sender_path, sender_len, "sender")) return;
		if (recv_pattern(half[1], 'h', 0, 123, 1, "half")) return;
		char c;
		if (!readable(half[1]) || recv(half[1], &c, 1, MSG_DONTWAIT) != 0) fail("half-no-eof");
		return;
	}
	(void)(send_pattern(client, 'e', 0, 64, "client2") || recv_pattern(client, 'f', 0, 64, 0, "client2")
		|| send_message(named_sender, 'w', 15, NULL, 0, "sender2") || send_pattern(half[1], 'k', 0, 50, "half2"));
}

static void check_c(int phase)
{
	if (phase == 1) {
		if (named(pending, 1, listen_path, listen_len, "pending")) return;
		if (recv_message(abstract_sk, 'x', 11, 1, NULL, 0, "abstract") || recv_message(abstract_sk, 'y', 22, 1, NULL, 0, "abstract")) return;
		(void)(nothing_waits(abstract_sk, "abstract") || named(abstract_sk, 0, abstract_name, abstract_len, "abstract"));
		return;
	}
	(void)(send_pattern(pending, 'g', 0, 32, "pending2") || recv_pattern(pending, 'i', 0, 32, 0, "pending2")
		|| recv_message(abstract_sk, 'z', 25, 1, NULL, 0, "abstract2"));
}

static void check_root(int phase)
{
	if (phase == 1) {
		if (recv_pattern(stream[0], 'b', 500, 1000, 1, "stream")) return;
		for (int i = 0; i < 3; i++) if (recv_message(dgram[0], 'E' + i, from_a_dgrams[i], 0, NULL, 0, "dgram")) return;
		if (nothing_waits(dgram[0], "dgram")) return;
		for (int i = 0; i < 2; i++) if (recv_message(seq[0], 'T' + i, from_a_records[i], 0, NULL, 0, "seqpacket")) return;
		if (nothing_waits(seq[0], "seqpacket")) return;
		if (recv_pattern(accepted, 'c', 0, 700, 1, "accepted")) return;
		if (named(accepted, 0, listen_path, listen_len, "accepted") || named(accepted, 1, client_path, client_len, "accepted")) return;
		if (recv_message(recv_sk, 'V', 30, 1, NULL, 0, "bound") || recv_message(recv_sk, 'K', 10, 1, sender_path, sender_len, "bound")
			|| recv_message(recv_sk, 'L', 20, 1, sender_path, sender_len, "bound") || recv_message(recv_sk, 'M', 40, 1, sender_path, sender_len, "bound")
			|| nothing_waits(recv_sk, "bound") || named(recv_sk, 0, dgram_path, dgram_len, "bound")) return;
		if (named(to_abstract, 1, abstract_name, abstract_len, "to-abstract") || named(listener, 0, listen_path, listen_len, "listener")
			|| named(idle, 0, idle_path, idle_len, "idle"))
			return;
		if (send(half[0], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != -1 || errno != EPIPE) { fail("half-not-shut-down"); return; }
		if (option(half[0], SO_PASSCRED) != 1) { fail("half-passcred"); return; }
		if (option(stream[0], SO_SNDBUF) != stream_sndbuf || option(recv_sk, SO_RCVBUF) != recv_rcvbuf) { fail("buffer-sizes"); return; }
		if (!(fcntl(dgram[0], F_GETFL) & O_NONBLOCK) || (fcntl(stream[0], F_GETFL) & O_NONBLOCK)) { fail("file-flags"); return; }
		/* The connection that waited in the backlog is the one accept(2) gives now, and the only one. */
		if (!readable(listener) || (taken = accept(listener, NULL, NULL)) < 0) { fail("backlog-empty"); return; }
		struct pollfd p = { listener, POLLIN, 0 };
		if (poll(&p, 1, 0) != 0) { fail("backlog-too-long"); return; }
		(void)named(taken, 1, "", 0, "taken");
		return;
	}
	if (send_pattern(stream[0], 'm', 0, 100, "stream2") || recv_pattern(stream[0], 'n', 0, 100, 0, "stream2")
		|| send_message(dgram[0], 'p', 77, NULL, 0, "dgram2") || recv_message(dgram[0], 'q', 77, 0, NULL, 0, "dgram2")
		|| send_message(seq[0], 'u', 9, NULL, 0, "seqpacket2") || recv_message(seq[0], 'v', 9, 0, NULL, 0, "seqpacket2")
		|| send_pattern(accepted, 'f', 0, 64, "accepted2") || recv_pattern(accepted, 'e', 0, 64, 0, "accepted2")
		|| recv_message(recv_sk, 'w', 15, 1, sender_path, sender_len, "bound2")
		|| send_message(to_abstract, 'z', 25, NULL, 0, "to-abstract2")
		|| recv_pattern(half[0], 'k', 0, 50, 0, "half2"))
		return;
	if (taken >= 0 && (send_pattern(taken, 'i', 0, 32, "taken2") || recv_pattern(taken, 'g', 0, 32, 0, "taken2"))) return;
	/* The listener still takes new connections. */
	int fresh = socket(AF_UNIX, SOCK_STREAM, 0), mine;
	if (connect_name(fresh, listen_path, listen_len) || !readable(listener) || (mine = accept(listener, NULL, NULL)) < 0) { fail("listener-%d", errno); return; }
	(void)(send_pattern(fresh, 'j', 0, 8, "fresh") || recv_pattern(mine, 'j', 0, 8, 1, "fresh"));
	close(fresh);
	close(mine);
}

/* ---- the tree ---- */

static int commands[CHILDREN][2], results[2];
static const char *child_names[CHILDREN] = { "A", "B", "C" };

static void report_result(void)
{
	char line[128] = { 0 };
	snprintf(line, sizeof(line), "%s", bad[0] ? bad : "OK");
	if (write(results[1], line, sizeof(line)) != sizeof(line)) _exit(1);
	bad[0] = 0;
}

static void setup_b_read(void);

/* A child answers each command of the root on the results pipe: 'r' (B's second set-up step), '1' or '2' (a check phase). */
static pid_t start_child(int which, void (*setup)(void), void (*check)(int))
{
	pid_t pid = fork();
	if (pid) return pid;
	setup();
	report_result(); /* ready */
	for (;;) {
		char command;
		if (read(commands[which][0], &command, 1) != 1) _exit(0);
		if (command == 'r') setup_b_read();
		else check(command - '0');
		report_result();
	}
}

static void setup_a(void)
{
	close(stream[0]); close(dgram[0]); close(seq[0]); close(half[0]); close(half[1]);
	close(listener); close(recv_sk); close(unnamed_sender); close(idle);
	unsigned char buf[1000];
	for (int done = 0; done < 1000;) {
		ssize_t r = recv(stream[1], buf + done, 1000 - done, 0);
		if (r <= 0 || !matches(buf + done, 'a', done, r)) _exit(3);
		done += r;
	}
	if (send_pattern(stream[1], 'b', 0, 1500, "setup")) _exit(3);
	for (int i = 0; i < 3; i++) if (send_message(dgram[1], 'E' + i, from_a_dgrams[i], NULL, 0, "setup")) _exit(3);
	for (int i = 0; i < 2; i++) if (send_message(seq[1], 'T' + i, from_a_records[i], NULL, 0, "setup")) _exit(3);
}

static void setup_b(void)
{
	for (int i = 0; i < 2; i++) { close(stream[i]); close(dgram[i]); close(seq[i]); }
	close(half[0]); close(listener); close(recv_sk); close(unnamed_sender); close(idle);
	client = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind_name(client, client_path, client_len) || connect_name(client, listen_path, listen_len)) _exit(4);
	named_sender = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (bind_name(named_sender, sender_path, sender_len)) _exit(4);
	struct sockaddr_un to;
	socklen_t tolen = address(&to, dgram_path, dgram_len);
	if (send_message(named_sender, 'K', 10, &to, tolen, "setup") || send_message(named_sender, 'L', 20, &to, tolen, "setup")
		|| send_message(named_sender, 'M', 40, &to, tolen, "setup"))
		_exit(4);
	/* Later datagrams go to the root's socket by connect. */
	if (connect(named_sender, (struct sockaddr *)&to, tolen)) _exit(4);
	if (send_pattern(client, 'c', 0, 700, "setup")) _exit(4);
}

/* After the root accepted B's connection and wrote 300 bytes: B reads 100 of them. */
static void setup_b_read(void)
{
	unsigned char buf[100];
	for (int done = 0; done < 100;) {
		ssize_t r = recv(client, buf + done, 100 - done, 0);
		if (r <= 0 || !matches(buf + done, 'd', done, r)) _exit(4);
		done += r;
	}
}

/* C keeps the root's listener too: one socket shared by two processes. */
static void setup_c(void)
{
	for (int i = 0; i < 2; i++) { close(stream[i]); close(dgram[i]); close(seq[i]); close(half[i]); }
	close(recv_sk); close(unnamed_sender); close(accepted); close(idle);
	pending = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect_name(pending, listen_path, listen_len)) _exit(5);
	abstract_sk = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (bind_name(abstract_sk, abstract_name, abstract_len)) _exit(5);
}

static int collect(char *what, int size)
{
	int ok = 1;
	for (int i = 0; i < CHILDREN; i++) {
		char line[128];
		struct pollfd p = { results[0], POLLIN, 0 };
		if (poll(&p, 1, 3 * TIMEOUT_MS) != 1 || read(results[0], line, sizeof(line)) != sizeof(line)) { snprintf(what, size, "child-silent"); return 0; }
		if (strcmp(line, "OK") && ok) { snprintf(what, size, "%s", line); ok = 0; }
	}
	return ok;
}

static void root_check(int first)
{
	char child_bad[128] = "";
	int children_ok = 1;
	for (int phase = first ? 1 : 2; phase <= 2; phase++) {
		char command = '0' + phase;
		for (int i = 0; i < CHILDREN; i++) if (write(commands[i][1], &command, 1) != 1) fail("command-%s", child_names[i]);
		check_root(phase);
		if (!collect(child_bad, sizeof(child_bad)) && children_ok) children_ok = 0;
	}
	FILE *log = fopen("unixsockets.log", "a");
	if (bad[0]) fprintf(log, "CORRUPT root:%s pid=%d\n", bad, getpid());
	else if (!children_ok) fprintf(log, "CORRUPT %s pid=%d\n", child_bad, getpid());
	else fprintf(log, "OK processes=%d pid=%d\n", CHILDREN + 1, getpid());
	fclose(log);
	bad[0] = 0;
}

static void write_ready(void)
{
	announce_ready(getpid());
}

/* Other tests: a server outside the checkpointed tree, and a client connected to it. */
static int serve(const char *path)
{
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	unlink(path);
	if (bind_name(l, path, strlen(path) + 1) || listen(l, 5)) return 1;
	write_ready();
	for (;;) { /* one connection at a time */
		int c = accept(l, NULL, NULL);
		char buf[256];
		ssize_t n;
		while (c >= 0 && (n = read(c, buf, sizeof(buf))) > 0) if (write(c, buf, n) != n) break;
		close(c);
	}
}

static int connect_and_wait(const char *path)
{
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect_name(c, path, strlen(path) + 1)) return 1;
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	write_ready();
	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		char buf[5];
		int ok = write(c, "ping", 5) == 5 && readable(c) && read(c, buf, 5) == 5 && !strcmp(buf, "ping");
		FILE *log = fopen("unixsockets.log", "a");
		fprintf(log, ok ? "OK echo pid=%d\n" : "CORRUPT echo pid=%d\n", getpid());
		fclose(log);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR [server PATH | client PATH]\n", argv[0]); return 2; }
	if (chdir(argv[1])) { perror("chdir"); return 1; }
	signal(SIGPIPE, SIG_IGN);
	if (argc == 4 && !strcmp(argv[2], "server")) return serve(argv[3]);
	if (argc == 4 && !strcmp(argv[2], "client")) return connect_and_wait(argv[3]);

	char cwd[80];
	if (!getcwd(cwd, sizeof(cwd))) return 1;
	path_name(listen_path, &listen_len, cwd, "listen.sock");
	path_name(client_path, &client_len, cwd, "client.sock");
	path_name(dgram_path, &dgram_len, cwd, "dgram.sock");
	path_name(sender_path, &sender_len, cwd, "sender.sock");
	path_name(idle_path, &idle_len, cwd, "idle.sock");
	abstract_len = 1 + snprintf(abstract_name + 1, sizeof(abstract_name) - 1, "criups-usk-%d", getpid());
	unlink(listen_path); unlink(client_path); unlink(dgram_path); unlink(sender_path); unlink(idle_path);

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, stream) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram)
		|| socketpair(AF_UNIX, SOCK_SEQPACKET, 0, seq) || socketpair(AF_UNIX, SOCK_STREAM, 0, half) || pipe(results))
		return 1;
	for (int i = 0; i < CHILDREN; i++) if (pipe(commands[i])) return 1;
	if (send_pattern(stream[0], 'a', 0, 3000, "setup")) return 1;
	for (int i = 0; i < 5; i++) if (send_message(dgram[0], 'D' + i, to_a_dgrams[i], NULL, 0, "setup")) return 1;
	for (int i = 0; i < 4; i++) if (send_message(seq[0], 'S' + i, to_a_records[i], NULL, 0, "setup")) return 1;
	int one = 1, sndbuf = 65536, rcvbuf = 100000;
	if (send_pattern(half[0], 'h', 0, 123, "setup") || shutdown(half[0], SHUT_WR) || setsockopt(half[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)))
		return 1;
	setsockopt(stream[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	stream_sndbuf = option(stream[0], SO_SNDBUF);
	listener = socket(AF_UNIX, SOCK_STREAM, 0);
	recv_sk = socket(AF_UNIX, SOCK_DGRAM, 0);
	idle = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind_name(listener, listen_path, listen_len) || listen(listener, 5) || bind_name(recv_sk, dgram_path, dgram_len)
		|| bind_name(idle, idle_path, idle_len))
		return 1;
	setsockopt(recv_sk, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	recv_rcvbuf = option(recv_sk, SO_RCVBUF);
	unnamed_sender = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct sockaddr_un to;
	socklen_t tolen = address(&to, dgram_path, dgram_len);
	if (send_message(unnamed_sender, 'V', 30, &to, tolen, "setup")) return 1;

	char line[128];
	start_child(A, setup_a, check_a);
	if (read(results[0], line, sizeof(line)) != sizeof(line)) return 1;
	start_child(B, setup_b, check_b);
	if (read(results[0], line, sizeof(line)) != sizeof(line)) return 1;
	if ((accepted = accept(listener, NULL, NULL)) < 0 || send_pattern(accepted, 'd', 0, 300, "setup")) return 1;
	char read_command = 'r';
	if (write(commands[B][1], &read_command, 1) != 1 || read(results[0], line, sizeof(line)) != sizeof(line) || strcmp(line, "OK")) return 1;
	start_child(C, setup_c, check_c);
	if (read(results[0], line, sizeof(line)) != sizeof(line)) return 1;
	to_abstract = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (connect_name(to_abstract, abstract_name, abstract_len) || send_message(to_abstract, 'x', 11, NULL, 0, "setup")
		|| send_message(to_abstract, 'y', 22, NULL, 0, "setup"))
		return 1;
	close(stream[1]); close(dgram[1]); close(seq[1]); close(half[1]);
	unsigned char buf[500];
	for (int done = 0; done < 500;) {
		ssize_t r = recv(stream[0], buf + done, 500 - done, 0);
		if (r <= 0 || !matches(buf + done, 'b', done, r)) return 1;
		done += r;
	}
	fcntl(dgram[0], F_SETFL, O_NONBLOCK);

	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	write_ready();
	int first = 1;
	for (;;) {
		pause();
		if (check_requested) {
			check_requested = 0;
			root_check(first);
			first = 0;
		}
	}
}
