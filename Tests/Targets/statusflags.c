/* statusflags WORKDIR
 * Open file descriptions that differ only in their status flags (what F_SETFL changes), checked after a restore:
 *   pipe A   - read end O_NONBLOCK, write end none; the read end opened again through /proc/self/fd twice: once
 *              read-only without O_NONBLOCK, once read-write with O_NONBLOCK;
 *   pipe B   - write end O_NONBLOCK | O_DIRECT (packet mode), read end O_ASYNC, owned by this process with signal
 *              SIGRTMIN+1 (F_SETOWN, F_SETSIG);
 *   FIFO     - WORKDIR/fifo opened read-only with O_NONBLOCK, read-only without, and write-only;
 *   sockets  - a socketpair, one end O_NONBLOCK;
 *   eventfds - one O_NONBLOCK, one not;
 *   a file   - WORKDIR/append.txt opened write-only with O_APPEND | O_NOATIME.
 * SIGUSR1: checks that each descriptor has exactly its own status flags (F_GETFL), and that they work: reads of the
 * empty non-blocking ends fail with EAGAIN, the packet-mode pipe keeps message boundaries, a write to pipe B signals
 * SIGRTMIN+1 with si_fd of its read end, the O_APPEND file is appended to. Appends "OK pid=P" or "CORRUPT <what>
 * pid=P" to WORKDIR/statusflags.log. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "selfcheck.h"

#define FLAGS (O_ACCMODE | O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME | O_NONBLOCK)

struct described { const char *name; int fd; int flags; };

static struct described fds[16];
static int count;
static int a_read, a_write, b_read, b_write, append_fd;
static volatile sig_atomic_t check_requested, io_signals, io_fd = -1;

static void on_usr1(int s) { (void)s; check_requested = 1; }
static void on_io(int s, siginfo_t *info, void *context) { (void)s; (void)context; io_signals++; io_fd = info->si_fd; }

static int set_flags(int fd, int add)
{
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | add)) die("F_SETFL");
	return fd;
}

static void remember(const char *name, int fd)
{
	fds[count].name = name;
	fds[count].fd = fd;
	fds[count].flags = fcntl(fd, F_GETFL) & FLAGS;
	count++;
}

static int reopen(int fd, int flags)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int again = open(path, flags);
	if (again < 0) die("reopen");
	return again;
}

static const char *check(void)
{
	static char what[128];
	for (int i = 0; i < count; i++) {
		int now = fcntl(fds[i].fd, F_GETFL) & FLAGS;
		if (now != fds[i].flags) {
			snprintf(what, sizeof(what), "%s has flags %#o instead of %#o", fds[i].name, now, fds[i].flags);
			return what;
		}
	}
	char buffer[16];
	if (read(a_read, buffer, 1) != -1 || errno != EAGAIN) return "pipe A's read end blocks";
	if (read(fds[3].fd, buffer, 1) != -1 || errno != EAGAIN) return "pipe A's read-write description blocks";

	int before = io_signals;
	if (write(b_write, "ab", 2) != 2 || write(b_write, "cd", 2) != 2) return "write to pipe B";
	for (int i = 0; i < 100 && io_signals == before; i++) usleep(1000);
	if (io_signals == before) return "no SIGRTMIN+1 for pipe B";
	if (io_fd != b_read) { snprintf(what, sizeof(what), "the signal names fd %d, not %d", (int)io_fd, b_read); return what; }
	if (read(b_read, buffer, sizeof(buffer)) != 2 || read(b_read, buffer, sizeof(buffer)) != 2) return "pipe B lost its packet mode";

	uint64_t value;
	if (read(fds[9].fd, &value, sizeof(value)) != -1 || errno != EAGAIN) return "the non-blocking eventfd blocks";
	if (read(fds[11].fd, buffer, 1) != -1 || errno != EAGAIN) return "the non-blocking FIFO reader blocks";

	struct stat before_append, after_append;
	fstat(append_fd, &before_append);
	lseek(append_fd, 0, SEEK_SET);
	if (write(append_fd, "x", 1) != 1) return "append";
	fstat(append_fd, &after_append);
	if (after_append.st_size != before_append.st_size + 1 || lseek(append_fd, 0, SEEK_CUR) != after_append.st_size) return "O_APPEND is not appending";
	return NULL;
}

static void report(const char *bad)
{
	FILE *log = fopen("statusflags.log", "a");
	if (bad) fprintf(log, "CORRUPT %s pid=%d\n", bad, getpid());
	else fprintf(log, "OK pid=%d\n", getpid());
	fclose(log);
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[1])) die("chdir");

	int p[2];
	if (pipe(p)) die("pipe");
	a_read = set_flags(p[0], O_NONBLOCK);
	a_write = p[1];
	remember("pipe A read end", a_read);                                   /* 0 */
	remember("pipe A write end", a_write);                                 /* 1 */
	remember("pipe A read end reopened", reopen(a_read, O_RDONLY));        /* 2 */
	remember("pipe A reopened read-write", reopen(a_read, O_RDWR | O_NONBLOCK)); /* 3 */

	if (pipe(p)) die("pipe");
	b_read = p[0];
	b_write = set_flags(p[1], O_NONBLOCK | O_DIRECT);
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_io;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGRTMIN + 1, &sa, NULL);
	if (fcntl(b_read, F_SETOWN, getpid()) || fcntl(b_read, F_SETSIG, SIGRTMIN + 1)) die("F_SETOWN");
	set_flags(b_read, O_ASYNC);
	remember("pipe B read end", b_read);                                   /* 4 */
	remember("pipe B write end", b_write);                                 /* 5 */

	int s[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, s)) die("socketpair");
	remember("non-blocking socket", set_flags(s[0], O_NONBLOCK));          /* 6 */
	remember("blocking socket", s[1]);                                     /* 7 */

	remember("blocking eventfd", eventfd(0, 0));                           /* 8 */
	remember("non-blocking eventfd", eventfd(0, EFD_NONBLOCK));            /* 9 */

	unlink("fifo");
	if (mkfifo("fifo", 0600)) die("mkfifo");
	int fifo_nonblocking = open("fifo", O_RDONLY | O_NONBLOCK);
	int fifo_writer = open("fifo", O_WRONLY);
	int fifo_reader = open("fifo", O_RDONLY);
	if (fifo_nonblocking < 0 || fifo_writer < 0 || fifo_reader < 0) die("fifo");
	remember("FIFO writer", fifo_writer);                                  /* 10 */
	remember("non-blocking FIFO reader", fifo_nonblocking);                /* 11 */
	remember("blocking FIFO reader", fifo_reader);                         /* 12 */

	append_fd = open("append.txt", O_WRONLY | O_CREAT | O_APPEND | O_NOATIME, 0600);
	if (append_fd < 0) die("append.txt");
	remember("O_APPEND file", append_fd);                                  /* 13 */

	sa.sa_handler = on_usr1;
	sa.sa_flags = 0;
	sigaction(SIGUSR1, &sa, NULL);

	announce_ready(getpid());

	for (;;) {
		pause();
		if (check_requested) {
			check_requested = 0;
			report(check());
		}
	}
}
