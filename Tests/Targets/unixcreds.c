/* unixcreds WORKDIR without|with
 * A test target whose unix sockets (a datagram pair and a stream pair) receive with SO_PASSCRED, each with one
 * message queued and not read:
 *   without  the message "early" was sent before the receiver asked for credentials, so it carries none (the kernel
 *            gives pid 0 and the overflow uid and gid with it): CriuPS saves it, and it must come back without any.
 *   with     the receiver asked first, so the message "signed" carries this process's credentials: CriuPS refuses it
 *            (the kernel lets a message carry only credentials of a process that exists as it is sent).
 * On SIGUSR1 it reads each queued message and checks its bytes and credentials (without: pid 0, the overflow
 * uid/gid; with: its own pid, uid and gid), then sends "fresh" and checks that it arrives with its own credentials
 * (SO_PASSCRED still on), and appends "OK pid=P" or "FAIL what pid=P" to WORKDIR/unixcreds.log. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "selfcheck.h"

static char failure[512];
static volatile sig_atomic_t requested;
static int with, pairs[2][2];
static const char *names[2] = { "datagram", "stream" };

static int fail(const char *format, ...)
{
	if (failure[0]) return 0;
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(failure, sizeof(failure), format, arguments);
	va_end(arguments);
	return 0;
}

static void on_usr1(int signal) { (void)signal; requested = 1; }

static int overflow_id(const char *file)
{
	FILE *f = fopen(file, "r");
	int id = -1;
	if (!f || fscanf(f, "%d", &id) != 1) die(file);
	fclose(f);
	return id;
}

/* Reads one message of exactly TEXT from FD (non-blocking) and checks the credentials it carries. */
static int receive(int fd, const char *what, const char *text, pid_t pid, uid_t uid, gid_t gid)
{
	char data[64] = { 0 }, control[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec vector = { data, strlen(text) };
	struct msghdr header = { .msg_iov = &vector, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control) };
	ssize_t n = recvmsg(fd, &header, MSG_DONTWAIT);
	if (n != (ssize_t)strlen(text) || memcmp(data, text, n) != 0)
		return fail("%s: read %zd bytes \"%s\" (%s), expected \"%s\"", what, n, n > 0 ? data : "", n < 0 ? strerror(errno) : "", text);
	struct cmsghdr *message = CMSG_FIRSTHDR(&header);
	if (!message || message->cmsg_level != SOL_SOCKET || message->cmsg_type != SCM_CREDENTIALS)
		return fail("%s: \"%s\" came without credentials", what, text);
	struct ucred credentials;
	memcpy(&credentials, CMSG_DATA(message), sizeof(credentials));
	if (credentials.pid != pid || credentials.uid != uid || credentials.gid != gid)
		return fail("%s: \"%s\" came with pid %d uid %u gid %u, expected pid %d uid %u gid %u", what, text,
			credentials.pid, credentials.uid, credentials.gid, pid, uid, gid);
	return 1;
}

static int check(void)
{
	int one = 0;
	for (int i = 0; i < 2; i++) {
		socklen_t length = sizeof(one);
		if (getsockopt(pairs[i][1], SOL_SOCKET, SO_PASSCRED, &one, &length) || one != 1) return fail("%s: SO_PASSCRED is off", names[i]);
		int queued = with ? receive(pairs[i][1], names[i], "signed", getpid(), getuid(), getgid())
			: receive(pairs[i][1], names[i], "early", 0, overflow_id("/proc/sys/kernel/overflowuid"), overflow_id("/proc/sys/kernel/overflowgid"));
		if (!queued) return 0;
		if (write(pairs[i][0], "fresh", 5) != 5) return fail("%s: write: %s", names[i], strerror(errno));
		if (!receive(pairs[i][1], names[i], "fresh", getpid(), getuid(), getgid())) return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 3 || chdir(argv[1]) != 0) die("usage: unixcreds WORKDIR without|with");
	with = strcmp(argv[2], "with") == 0;
	FILE *log = fopen("unixcreds.log", "a");
	if (!log) die("log");
	setvbuf(log, NULL, _IOLBF, 0);
	int one = 1, types[2] = { SOCK_DGRAM, SOCK_STREAM };
	for (int i = 0; i < 2; i++) {
		if (socketpair(AF_UNIX, types[i], 0, pairs[i])) die("socketpair");
		if (with && setsockopt(pairs[i][1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one))) die("SO_PASSCRED");
		const char *text = with ? "signed" : "early";
		if (write(pairs[i][0], text, strlen(text)) != (ssize_t)strlen(text)) die("write");
		if (!with && setsockopt(pairs[i][1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one))) die("SO_PASSCRED");
	}
	signal(SIGUSR1, on_usr1);
	announce_ready(getpid());
	for (;;) {
		pause();
		if (!requested) continue;
		requested = 0;
		failure[0] = 0;
		if (check())
			fprintf(log, "OK pid=%d\n", getpid());
		else
			fprintf(log, "FAIL %s pid=%d\n", failure[0] ? failure : "?", getpid());
	}
}
