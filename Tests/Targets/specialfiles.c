/* specialfiles WORKDIR
 * A parent and a child holding special files, checked after a restore.
 *   ghost-open.txt   - 5000 bytes, open read-write at offset 1234 and mapped shared, then deleted;
 *   ghost-sparse.bin - 64 KiB with data only in its first and last 4 KiB, open read-only, then deleted;
 *   ghost-mapped.bin - 3 pages, mapped shared and privately (one page changed, copy-on-write), its descriptor
 *                      closed, then deleted;
 *   fifo             - a FIFO opened by path: read-only and non-blocking by the parent, write-only by the child,
 *                      holding the unread line "unread before checkpoint\n";
 *   locks            - the parent holds flock(LOCK_EX) on flock.lck (inherited by the child), an OFD read lock on
 *                      ofd.lck and a POSIX read lock on bytes 0-9 of posix.lck; the child a POSIX write lock on
 *                      bytes 100-199 of posix.lck.
 * SIGUSR1: checks everything without consuming the FIFO (its unread byte count must still be right), including the
 * locks from a new process forked for the purpose (LOCK_NB and F_GETLK/F_OFD_GETLK attempts), and appends
 * "OK pid=P" or "CORRUPT <what> pid=P" to WORKDIR/specialfiles.log. SIGUSR2: the same, but first reads the unread
 * FIFO line, then has the child write a new one and reads it. SIGTERM kills the child and exits. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "selfcheck.h"

#define PAGE 4096
#define OPEN_SIZE 5000
#define SPARSE_SIZE (64 * 1024)
#define UNREAD "unread before checkpoint\n"

static char workdir[PATH_MAX];
static int open_fd, sparse_fd, fifo_fd, flock_fd, ofd_fd, posix_fd;
static unsigned char *open_map, *mapped_shared, *mapped_private;
static pid_t child;
static int fifo_consumed;
static volatile sig_atomic_t check_requested, deep_requested, stop_requested, ping_requested;

static void on_usr1(int s) { (void)s; check_requested = 1; }
static void on_usr2(int s) { (void)s; deep_requested = 1; }
static void on_term(int s) { (void)s; stop_requested = 1; }
static void on_ping(int s) { (void)s; ping_requested = 1; }

static unsigned char pattern(size_t i) { return (unsigned char)(i * 13 + 1); }

static int lock_range(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock l = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	return fcntl(fd, cmd, &l);
}

/* The child: a POSIX write lock of its own and the FIFO's write end; SIGUSR1 writes a line into the FIFO. */
static void run_child(void)
{
	signal(SIGTERM, SIG_DFL);
	struct sigaction sa = { 0 };
	sa.sa_handler = on_ping;
	sigaction(SIGUSR1, &sa, NULL);
	int fifo_w = open("fifo", O_WRONLY);
	if (fifo_w < 0 || write(fifo_w, UNREAD, strlen(UNREAD)) != (ssize_t)strlen(UNREAD)) _exit(1);
	if (lock_range(posix_fd, F_SETLK, F_WRLCK, 100, 100)) _exit(1);
	FILE *r = fopen("child.ready", "w");
	fclose(r);
	for (int n = 1;; n++) {
		pause();
		if (!ping_requested) continue;
		ping_requested = 0;
		char line[32];
		int len = snprintf(line, sizeof(line), "ping %d\n", n);
		if (write(fifo_w, line, len) != len) _exit(1);
	}
}

static const char *check_link(int fd, const char *name, int deleted)
{
	static char what[64];
	char path[64], link[PATH_MAX], want[PATH_MAX + 16];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	link[n < 0 ? 0 : n] = 0;
	snprintf(want, sizeof(want), "%s/%s%s", workdir, name, deleted ? " (deleted)" : "");
	if (strcmp(link, want)) { snprintf(what, sizeof(what), "%s-link", name); return what; }
	return NULL;
}

/* Run in a new process, which holds none of the locks: what does it see? 0 when all is as set up. */
static int probe_locks(pid_t parent)
{
	int f = open("flock.lck", O_RDONLY);
	if (f < 0 || flock(f, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK) return 1;
	int p = open("posix.lck", O_RDWR);
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	if (p < 0 || fcntl(p, F_GETLK, &l) || l.l_type != F_RDLCK || l.l_pid != parent) return 2;
	l = (struct flock){ .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 100 };
	if (fcntl(p, F_GETLK, &l) || l.l_type != F_WRLCK || l.l_pid != child) return 3;
	l = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 50 };
	if (fcntl(p, F_GETLK, &l) || l.l_type != F_UNLCK) return 4;
	int o = open("ofd.lck", O_RDWR);
	l = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (o < 0 || fcntl(o, F_OFD_GETLK, &l) || l.l_type != F_RDLCK) return 5;
	l = (struct flock){ .l_type = F_RDLCK, .l_whence = SEEK_SET };
	if (fcntl(o, F_OFD_GETLK, &l) || l.l_type != F_UNLCK) return 6;
	return 0;
}

static const char *check_locks(void)
{
	static const char *what[] = { NULL, "flock-not-held", "posix-read-lock-of-parent", "posix-write-lock-of-child", "posix-lock-too-wide", "ofd-read-lock-not-held", "ofd-lock-not-a-read-lock" };
	pid_t parent = getpid();
	pid_t probe = fork();
	if (probe == 0) _exit(probe_locks(parent));
	int status;
	if (waitpid(probe, &status, 0) != probe || !WIFEXITED(status)) return "lock-probe-died";
	int code = WEXITSTATUS(status);
	return code < (int)(sizeof(what) / sizeof(*what)) ? what[code] : "lock-probe";
}

static const char *read_fifo(const char *want)
{
	char buf[64];
	size_t len = strlen(want), got = 0;
	struct pollfd p = { .fd = fifo_fd, .events = POLLIN };
	while (got < len) {
		if (poll(&p, 1, 3000) != 1) return "fifo-no-data";
		ssize_t n = read(fifo_fd, buf + got, len - got);
		if (n <= 0) return "fifo-read";
		got += n;
	}
	return memcmp(buf, want, len) ? "fifo-wrong-data" : NULL;
}

static const char *check(int deep)
{
	static int pings;
	const char *bad;
	struct stat st;

	if ((bad = check_link(open_fd, "ghost-open.txt", 1))) return bad;
	if (fstat(open_fd, &st) || st.st_nlink != 0 || st.st_size != OPEN_SIZE) return "ghost-open-stat";
	if (lseek(open_fd, 0, SEEK_CUR) != 1234) return "ghost-open-position";
	unsigned char buf[OPEN_SIZE];
	if (pread(open_fd, buf, OPEN_SIZE, 0) != OPEN_SIZE) return "ghost-open-read";
	for (size_t i = 0; i < OPEN_SIZE; i++) if (i != 10 && buf[i] != pattern(i)) return "ghost-open-data";
	if (memcmp(open_map, buf, OPEN_SIZE)) return "ghost-open-mapping-differs";
	unsigned char mark = buf[10] + 1;
	if (pwrite(open_fd, &mark, 1, 10) != 1 || open_map[10] != mark) return "ghost-open-mapping-not-the-file";

	if ((bad = check_link(sparse_fd, "ghost-sparse.bin", 1))) return bad;
	if (fstat(sparse_fd, &st) || st.st_nlink != 0 || st.st_size != SPARSE_SIZE || (st.st_mode & 0777) != 0640) return "ghost-sparse-stat";
	if ((fcntl(sparse_fd, F_GETFL) & O_ACCMODE) != O_RDONLY) return "ghost-sparse-flags";
	static unsigned char sparse[SPARSE_SIZE];
	if (pread(sparse_fd, sparse, SPARSE_SIZE, 0) != SPARSE_SIZE) return "ghost-sparse-read";
	for (size_t i = 0; i < SPARSE_SIZE; i++) {
		unsigned char want = (i < PAGE || i >= SPARSE_SIZE - PAGE) ? pattern(i) : 0;
		if (sparse[i] != want) return "ghost-sparse-data";
	}

	char maps_link[PATH_MAX], path[64];
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)mapped_shared, (unsigned long)mapped_shared + 3 * PAGE);
	ssize_t n = readlink(path, maps_link, sizeof(maps_link) - 1);
	maps_link[n < 0 ? 0 : n] = 0;
	if (!strstr(maps_link, "/ghost-mapped.bin (deleted)")) return "ghost-mapped-link";
	for (int p = 0; p < 3; p++) {
		if (mapped_shared[p * PAGE + 7] != 'A' + p) return "ghost-mapped-shared-data";
		if (mapped_private[p * PAGE + 7] != (p == 1 ? 'c' : 'A' + p)) return "ghost-mapped-private-data";
	}
	mapped_shared[2 * PAGE + 9] += 1; /* the private mapping never copied page 2: it sees the file */
	if (mapped_private[2 * PAGE + 9] != mapped_shared[2 * PAGE + 9]) return "ghost-mapped-not-one-file";

	if ((bad = check_link(fifo_fd, "fifo", 0))) return bad;
	if ((fcntl(fifo_fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) != (O_RDONLY | O_NONBLOCK)) return "fifo-flags";
	if (deep && !fifo_consumed) {
		if ((bad = read_fifo(UNREAD))) return bad;
		fifo_consumed = 1;
	}
	int unread = -1;
	if (ioctl(fifo_fd, FIONREAD, &unread) || unread != (fifo_consumed ? 0 : (int)strlen(UNREAD))) return "fifo-unread-bytes";
	if (deep) {
		char want[32];
		snprintf(want, sizeof(want), "ping %d\n", ++pings);
		kill(child, SIGUSR1);
		if ((bad = read_fifo(want))) return bad;
	}
	return check_locks();
}

static void report(const char *bad)
{
	FILE *log = fopen("specialfiles.log", "a");
	if (bad) fprintf(log, "CORRUPT %s pid=%d\n", bad, getpid());
	else fprintf(log, "OK pid=%d\n", getpid());
	fclose(log);
}

static int create(const char *name, int flags, const unsigned char *data, size_t size, off_t at)
{
	int fd = open(name, flags | O_CREAT | O_TRUNC, 0640);
	if (fd < 0 || (size && pwrite(fd, data, size, at) != (ssize_t)size)) { perror(name); exit(1); }
	return fd;
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[1]) || !getcwd(workdir, sizeof(workdir))) { perror("chdir"); return 1; }

	unsigned char data[SPARSE_SIZE];
	for (size_t i = 0; i < sizeof(data); i++) data[i] = pattern(i);
	open_fd = create("ghost-open.txt", O_RDWR, data, OPEN_SIZE, 0);
	open_map = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, open_fd, 0);
	lseek(open_fd, 1234, SEEK_SET);
	sparse_fd = create("ghost-sparse.bin", O_RDWR, data, PAGE, 0);
	if (pwrite(sparse_fd, data + SPARSE_SIZE - PAGE, PAGE, SPARSE_SIZE - PAGE) != PAGE) return 1;
	close(sparse_fd);
	sparse_fd = open("ghost-sparse.bin", O_RDONLY);
	unsigned char pages[3 * PAGE] = { 0 };
	for (int p = 0; p < 3; p++) pages[p * PAGE + 7] = 'A' + p;
	int mapped_fd = create("ghost-mapped.bin", O_RDWR, pages, sizeof(pages), 0);
	mapped_shared = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mapped_fd, 0);
	mapped_private = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, mapped_fd, 0);
	if (open_map == MAP_FAILED || mapped_shared == MAP_FAILED || mapped_private == MAP_FAILED) { perror("mmap"); return 1; }
	mapped_private[PAGE + 7] = 'c';
	close(mapped_fd);
	unlink("ghost-open.txt");
	unlink("ghost-sparse.bin");
	unlink("ghost-mapped.bin");

	unlink("fifo");
	if (mkfifo("fifo", 0600)) { perror("mkfifo"); return 1; }
	fifo_fd = open("fifo", O_RDONLY | O_NONBLOCK);
	flock_fd = create("flock.lck", O_RDWR, NULL, 0, 0);
	ofd_fd = create("ofd.lck", O_RDWR, NULL, 0, 0);
	posix_fd = create("posix.lck", O_RDWR, NULL, 0, 0);
	if (fifo_fd < 0 || flock(flock_fd, LOCK_EX) || lock_range(ofd_fd, F_OFD_SETLK, F_RDLCK, 0, 0) || lock_range(posix_fd, F_SETLK, F_RDLCK, 0, 10)) {
		perror("set-up");
		return 1;
	}

	unlink("child.ready");
	if (!(child = fork())) run_child();
	while (access("child.ready", F_OK)) usleep(1000);

	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	const char *bad = check(0);
	if (bad) { report(bad); kill(child, SIGKILL); return 1; }
	announce_ready(getpid());

	while (!stop_requested) {
		pause();
		if (check_requested || deep_requested) {
			int deep = deep_requested;
			check_requested = deep_requested = 0;
			report(check(deep));
		}
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}
