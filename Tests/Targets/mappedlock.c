/* mappedlock WORKDIR
 * Files that only a memory mapping keeps open, with the locks taken through the descriptor they were opened with
 * (as the JVM does with its hsperfdata file), checked after a restore:
 *   flocked.dat  - 2 pages, flock(LOCK_EX), mapped shared read-write (the pattern written through the mapping);
 *   ofd.dat      - 1 page, an OFD write lock on bytes 0-99, mapped shared read-only from a read-write descriptor;
 *   ghost.dat    - 1 page, flock(LOCK_SH), mapped privately, then deleted (saved as a deleted file);
 * every descriptor closed. A child shares the mappings of ofd.dat and ghost.dat (it unmapped flocked.dat).
 * SIGUSR1: checks that no descriptor of the process holds these files, that the mappings hold their data (a write
 * through flocked.dat's reaches the file), and, from a new process, that every lock is still held: flock(LOCK_NB)
 * and F_OFD_GETLK attempts through new descriptions fail where they conflict and succeed where they do not. Appends
 * "OK pid=P" or "CORRUPT <what> pid=P" to WORKDIR/mappedlock.log. SIGUSR2: unmaps flocked.dat, then checks that its
 * lock went with the mapping (a new process can take it): the lock belonged to the mapping's description and to
 * nothing else. SIGTERM ends both processes. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "selfcheck.h"

#define PAGE 4096

static unsigned char *flocked, *ofd_map, *ghost_map;
static char ghost_files[PATH_MAX];
static pid_t child;
static int unmapped;
static volatile sig_atomic_t check_requested, release_requested, stop_requested;

static void on_usr1(int s) { (void)s; check_requested = 1; }
static void on_usr2(int s) { (void)s; release_requested = 1; }
static void on_term(int s) { (void)s; stop_requested = 1; }

static unsigned char pattern(size_t i, int salt) { return (unsigned char)(i * 7 + salt); }

static int make_file(const char *name, size_t size, int salt)
{
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) die(name);
	for (size_t i = 0; i < size; i++) {
		unsigned char b = pattern(i, salt);
		if (write(fd, &b, 1) != 1) die("write");
	}
	return fd;
}

static void *map(int fd, size_t size, int prot, int flags)
{
	void *p = mmap(NULL, size, prot, flags, fd, 0);
	if (p == MAP_FAILED) die("mmap");
	return p;
}

/* Whether a descriptor of this process holds one of the .dat files. */
static int holds_locked_file(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = 0;
	while ((e = readdir(d))) {
		char path[300], link[PATH_MAX];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0) continue;
		link[n] = 0;
		if (strstr(link, ".dat")) found = 1;
	}
	closedir(d);
	return found;
}

/* Run in a new process: the exit code says which lock is not as it should be (0: all are). */
static int probe_locks(int expect_flocked)
{
	int fd = open("flocked.dat", O_RDONLY);
	if (fd < 0) return 10;
	int got = flock(fd, LOCK_SH | LOCK_NB);
	if (expect_flocked ? (got == 0 || errno != EWOULDBLOCK) : got != 0) return 11;
	close(fd);

	fd = open("ofd.dat", O_RDWR);
	if (fd < 0) return 20;
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
	if (fcntl(fd, F_OFD_GETLK, &l) || l.l_type != F_WRLCK || l.l_pid != -1 || l.l_start != 0 || l.l_len != 100) return 21;
	struct flock beyond = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 0 };
	if (fcntl(fd, F_OFD_GETLK, &beyond) || beyond.l_type != F_UNLCK) return 22;
	close(fd);

	/* The deleted file, reached through the mapping's file. */
	fd = open(ghost_files, O_RDONLY);
	if (fd < 0) return 30;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK) return 31;
	if (flock(fd, LOCK_SH | LOCK_NB)) return 32;
	close(fd);
	return 0;
}

static const char *check(void)
{
	static char what[64];
	if (holds_locked_file()) return "a descriptor holds a locked file";
	for (size_t i = 0; i < 2 * PAGE && !unmapped; i++)
		if (flocked[i] != pattern(i, 1) && !(i == 5 && flocked[i] == 0xEE)) return "flocked.dat mapping";
	for (size_t i = 0; i < PAGE; i++)
		if (ofd_map[i] != pattern(i, 2)) return "ofd.dat mapping";
	for (size_t i = 0; i < PAGE; i++)
		if (ghost_map[i] != pattern(i, 3)) return "ghost.dat mapping";
	if (!unmapped) {
		/* A write through the shared mapping reaches the file. */
		flocked[5] = 0xEE;
		int fd = open("flocked.dat", O_RDONLY);
		unsigned char b = 0;
		if (fd < 0 || pread(fd, &b, 1, 5) != 1 || b != 0xEE) return "flocked.dat is not shared with its file";
		close(fd);
	}
	pid_t probe = fork();
	if (probe == 0) _exit(probe_locks(!unmapped));
	int status;
	if (waitpid(probe, &status, 0) != probe || !WIFEXITED(status)) return "lock probe died";
	if (WEXITSTATUS(status)) {
		snprintf(what, sizeof(what), "lock probe failed at step %d", WEXITSTATUS(status));
		return what;
	}
	return NULL;
}

static void report(const char *bad)
{
	FILE *log = fopen("mappedlock.log", "a");
	if (bad) fprintf(log, "CORRUPT %s pid=%d\n", bad, getpid());
	else fprintf(log, "OK pid=%d\n", getpid());
	fclose(log);
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[1])) die("chdir");

	int fd = make_file("flocked.dat", 2 * PAGE, 1);
	if (flock(fd, LOCK_EX)) die("flock");
	flocked = map(fd, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED);
	close(fd);

	fd = make_file("ofd.dat", PAGE, 2);
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
	if (fcntl(fd, F_OFD_SETLK, &l)) die("F_OFD_SETLK");
	ofd_map = map(fd, PAGE, PROT_READ, MAP_SHARED);
	close(fd);

	fd = make_file("ghost.dat", PAGE, 3);
	if (flock(fd, LOCK_SH)) die("flock");
	ghost_map = map(fd, PAGE, PROT_READ, MAP_PRIVATE);
	close(fd);
	if (unlink("ghost.dat")) die("unlink");
	snprintf(ghost_files, sizeof(ghost_files), "/proc/%d/map_files/%lx-%lx", getpid(),
		 (unsigned long)ghost_map, (unsigned long)ghost_map + PAGE);

	child = fork();
	if (child < 0) die("fork");
	if (child == 0) {
		signal(SIGTERM, SIG_DFL);
		munmap(flocked, 2 * PAGE);
		for (;;) pause();
	}

	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);

	announce_ready(getpid());

	while (!stop_requested) {
		pause();
		if (check_requested) {
			check_requested = 0;
			report(check());
		}
		if (release_requested) {
			release_requested = 0;
			munmap(flocked, 2 * PAGE);
			unmapped = 1;
			report(check());
		}
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}
