/* fanotifymarks WORKDIR
 * A test target holding a fanotify group (FAN_CLASS_NOTIF, FAN_NONBLOCK, events opened O_RDONLY|O_LARGEFILE) with
 * marks of every kind CRIU saves, that verifies them after a checkpoint and restore:
 *   WORKDIR/watched      an inode mark: FAN_OPEN | FAN_CLOSE_WRITE
 *   WORKDIR/dir          an inode mark on a directory: FAN_OPEN | FAN_EVENT_ON_CHILD (opens of its files)
 *   WORKDIR/dir/quiet    an ignored mask: FAN_OPEN (its opens give no event through the directory's mark), surviving
 *                        modification (FAN_MARK_IGNORED_SURV_MODIFY)
 *   the mount of WORKDIR a mount mark: FAN_CLOSE_WRITE (a file written anywhere on it)
 * Events that came before it is ready are read and dropped. WORKDIR/ready holds the pid once set-up is done. On
 * SIGUSR1 it opens WORKDIR/watched, WORKDIR/dir/child and WORKDIR/dir/quiet for reading and writes WORKDIR/other,
 * then reads the group's events, keeping those of its own pid on these four files, and expects exactly: FAN_OPEN of
 * watched, FAN_OPEN of child, FAN_CLOSE_WRITE of other, and nothing of quiet. It appends "OK pid=P" or "FAIL what
 * pid=P" to WORKDIR/fanotifymarks.log. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include "selfcheck.h"

static volatile sig_atomic_t check_requested;
static int group;
static char work[PATH_MAX];

static void on_usr1(int s) { (void)s; check_requested = 1; }

static void mark(unsigned flags, unsigned long long mask, const char *name)
{
	if (fanotify_mark(group, FAN_MARK_ADD | flags, mask, AT_FDCWD, name) != 0) die(name);
}

static void touch(const char *name)
{
	int fd = open(name, O_CREAT | O_WRONLY, 0644);
	if (fd < 0) die(name);
	close(fd);
}

/* Reads every queued event; counts FAN_OPEN and FAN_CLOSE_WRITE of this process's opens of each file. */
static void collect(int counts[4][2])
{
	static const char *names[4] = { "watched", "dir/child", "dir/quiet", "other" };
	char buffer[8192];
	for (;;) {
		ssize_t n = read(group, buffer, sizeof(buffer));
		if (n <= 0) return;
		for (struct fanotify_event_metadata *e = (void *)buffer; FAN_EVENT_OK(e, n); e = FAN_EVENT_NEXT(e, n)) {
			if (e->fd < 0) continue;
			char link[64], path[PATH_MAX];
			snprintf(link, sizeof(link), "/proc/self/fd/%d", e->fd);
			ssize_t length = readlink(link, path, sizeof(path) - 1);
			close(e->fd);
			if (length <= 0 || e->pid != getpid()) continue;
			path[length] = 0;
			for (int i = 0; i < 4; i++) {
				char full[PATH_MAX + 32];
				snprintf(full, sizeof(full), "%s/%s", work, names[i]);
				if (strcmp(path, full) != 0) continue;
				if (e->mask & FAN_OPEN) counts[i][0]++;
				if (e->mask & FAN_CLOSE_WRITE) counts[i][1]++;
			}
		}
	}
}

static const char *check(void)
{
	int counts[4][2] = { { 0 } };
	collect(counts); /* anything queued meanwhile */
	memset(counts, 0, sizeof(counts));
	const char *reads[3] = { "watched", "dir/child", "dir/quiet" };
	for (int i = 0; i < 3; i++) {
		int fd = open(reads[i], O_RDONLY);
		if (fd < 0) return reads[i];
		close(fd);
	}
	int fd = open("other", O_WRONLY | O_TRUNC);
	if (fd < 0 || write(fd, "x", 1) != 1) return "other";
	close(fd);
	for (int round = 0; round < 50; round++) {
		collect(counts);
		if (counts[0][0] && counts[1][0] && counts[3][1]) break;
		usleep(10000);
	}
	if (counts[0][0] != 1) return "watched-open";
	if (counts[1][0] != 1) return "child-open";
	if (counts[2][0] != 0) return "quiet-opened";
	if (counts[3][1] != 1) return "other-close-write";
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2 || chdir(argv[1]) != 0 || !getcwd(work, sizeof(work))) die("usage: fanotifymarks WORKDIR");
	FILE *log = fopen("fanotifymarks.log", "a");
	if (!log) die("log");
	setvbuf(log, NULL, _IOLBF, 0);
	mkdir("dir", 0755);
	touch("watched"); touch("dir/child"); touch("dir/quiet"); touch("other");

	group = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE);
	if (group < 0) die("fanotify_init");
	mark(0, FAN_OPEN | FAN_CLOSE_WRITE, "watched");
	mark(0, FAN_OPEN | FAN_EVENT_ON_CHILD, "dir");
	mark(FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_OPEN, "dir/quiet");
	mark(FAN_MARK_MOUNT, FAN_CLOSE_WRITE, ".");

	int counts[4][2];
	collect(counts);
	signal(SIGUSR1, on_usr1);
	announce_ready(getpid());
	for (;;) {
		struct pollfd fds = { group, POLLIN, 0 };
		/* Events of other processes on the mount keep coming: drop them while idle. */
		if (poll(&fds, 1, 200) > 0 && !check_requested) collect(counts);
		if (!check_requested) continue;
		check_requested = 0;
		const char *failed = check();
		if (failed) fprintf(log, "FAIL %s pid=%d\n", failed, getpid());
		else fprintf(log, "OK pid=%d\n", getpid());
	}
}
