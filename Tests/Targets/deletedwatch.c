/* deletedwatch WORKDIR
 * inotify watches on files deleted since (a watch lasts while something holds its file open), checked after a
 * restore: WORKDIR/watched.txt open read-write and watched (IN_MODIFY | IN_ATTRIB), and WORKDIR/watched-dir open and
 * watched (IN_ATTRIB | IN_CREATE), both then deleted; a third watch on WORKDIR itself, which stays. The events of the
 * deletions are read before the process says it is ready.
 * SIGUSR1: checks that the instance's watches are on the very files it holds open (the inode of each watch in
 * fdinfo is the inode of its descriptor, with the wd it had), then writes to the file and changes the directory's
 * mode, and reads exactly one IN_MODIFY for the file's wd and one IN_ATTRIB for the directory's. Appends "OK pid=P"
 * or "CORRUPT <what> pid=P" to WORKDIR/deletedwatch.log. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include "selfcheck.h"

static int inotify, file_fd, dir_fd, file_wd, dir_wd, workdir_wd;
static volatile sig_atomic_t check_requested;

static void on_usr1(int s) { (void)s; check_requested = 1; }

/* Reads every queued event; returns how many there were, and the last one's wd and mask. */
static int drain(int *wd, unsigned *mask)
{
	char buffer[4096] __attribute__((aligned(8)));
	int events = 0;
	struct pollfd p = { .fd = inotify, .events = POLLIN };
	while (poll(&p, 1, 100) == 1) {
		ssize_t n = read(inotify, buffer, sizeof(buffer));
		for (char *at = buffer; n > 0 && at < buffer + n;) {
			struct inotify_event *e = (struct inotify_event *)at;
			*wd = e->wd;
			*mask = e->mask;
			events++;
			at += sizeof(*e) + e->len;
		}
	}
	return events;
}

/* The inode fdinfo shows for watch wd, or 0. */
static unsigned long watched_inode(int wd)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", inotify);
	FILE *f = fopen(path, "r");
	unsigned long inode = 0;
	while (f && fgets(line, sizeof(line), f)) {
		int w;
		unsigned long ino;
		if (sscanf(line, "inotify wd:%x ino:%lx", &w, &ino) == 2 && w == wd) inode = ino;
	}
	if (f) fclose(f);
	return inode;
}

static const char *check(void)
{
	struct stat file, dir;
	if (fstat(file_fd, &file) || fstat(dir_fd, &dir)) return "fstat";
	if (file.st_nlink != 0 || dir.st_nlink != 0) return "the files are not deleted";
	if (watched_inode(file_wd) != file.st_ino) return "the file's watch is not on the open file";
	if (watched_inode(dir_wd) != dir.st_ino) return "the directory's watch is not on the open directory";
	if (!watched_inode(workdir_wd)) return "the watch on WORKDIR is gone";
	int wd = 0;
	unsigned mask = 0;
	if (drain(&wd, &mask)) return "events were waiting";
	if (write(file_fd, "x", 1) != 1) return "write";
	if (drain(&wd, &mask) != 1 || wd != file_wd || mask != IN_MODIFY) return "no IN_MODIFY for the deleted file";
	if (fchmod(dir_fd, 0700)) return "fchmod";
	if (drain(&wd, &mask) != 1 || wd != dir_wd || mask != (IN_ATTRIB | IN_ISDIR)) return "no IN_ATTRIB for the deleted directory";
	return NULL;
}

static void report(const char *bad)
{
	FILE *log = fopen("deletedwatch.log", "a");
	if (bad) fprintf(log, "CORRUPT %s pid=%d\n", bad, getpid());
	else fprintf(log, "OK pid=%d\n", getpid());
	fclose(log);
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[1])) die("chdir");
	inotify = inotify_init1(IN_NONBLOCK);
	if (inotify < 0) die("inotify_init1");
	workdir_wd = inotify_add_watch(inotify, ".", IN_DELETE_SELF | IN_MOVE_SELF);

	file_fd = open("watched.txt", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (file_fd < 0 || write(file_fd, "contents\n", 9) != 9) die("watched.txt");
	file_wd = inotify_add_watch(inotify, "watched.txt", IN_MODIFY | IN_ATTRIB);
	if (mkdir("watched-dir", 0755)) die("mkdir");
	dir_fd = open("watched-dir", O_RDONLY | O_DIRECTORY);
	dir_wd = inotify_add_watch(inotify, "watched-dir", IN_ATTRIB | IN_CREATE);
	if (workdir_wd < 0 || file_wd < 0 || dir_fd < 0 || dir_wd < 0) die("inotify_add_watch");
	if (unlink("watched.txt") || rmdir("watched-dir")) die("delete");
	int wd;
	unsigned mask;
	drain(&wd, &mask);

	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
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
