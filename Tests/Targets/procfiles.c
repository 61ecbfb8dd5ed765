/* procfiles WORKDIR
 * Files under /proc of processes of its own tree, open across a restore: /proc/CHILD/stat of a child that sleeps,
 * /proc/CHILD as a directory, /proc/ZOMBIE/stat of a child that has exited and is not reaped, and its own
 * /proc/self/status (which the kernel shows as /proc/PID/status).
 * SIGUSR1: reads each through its descriptor (pread at 0; openat of "comm" under the directory) and checks that it
 * describes that process: the child's pid and a sleeping state, the zombie's pid and state Z, its own pid. Appends
 * "OK pid=P" or "CORRUPT <what> pid=P" to WORKDIR/procfiles.log. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "selfcheck.h"

static pid_t child, zombie;
static int child_stat, child_dir, zombie_stat, own_status;
static volatile sig_atomic_t check_requested;

static void on_usr1(int s) { (void)s; check_requested = 1; }

static int open_proc(pid_t pid, const char *name, int flags)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d%s%s", pid, *name ? "/" : "", name);
	int fd = open(path, flags);
	if (fd < 0) die(path);
	return fd;
}

/* Whether the stat file open as fd is that of pid, in one of the states given. */
static int is_stat_of(int fd, pid_t pid, const char *states)
{
	char text[512];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	if (n <= 0) return 0;
	text[n] = 0;
	char *end = strrchr(text, ')');
	return atoi(text) == pid && end && end[1] == ' ' && strchr(states, end[2]);
}

static const char *check(void)
{
	if (!is_stat_of(child_stat, child, "SR")) return "/proc/CHILD/stat";
	if (!is_stat_of(zombie_stat, zombie, "Z")) return "/proc/ZOMBIE/stat";
	int comm = openat(child_dir, "comm", O_RDONLY);
	char text[4096];
	ssize_t n = comm < 0 ? -1 : read(comm, text, sizeof(text) - 1);
	close(comm);
	if (n <= 0 || strncmp(text, "procfiles", 9)) return "/proc/CHILD/comm";
	n = pread(own_status, text, sizeof(text) - 1, 0);
	if (n <= 0) return "/proc/self/status";
	text[n] = 0;
	char line[32];
	snprintf(line, sizeof(line), "\nPid:\t%d\n", getpid());
	if (!strstr(text, line)) return "/proc/self/status names another process";
	return NULL;
}

static void report(const char *bad)
{
	FILE *log = fopen("procfiles.log", "a");
	if (bad) fprintf(log, "CORRUPT %s pid=%d\n", bad, getpid());
	else fprintf(log, "OK pid=%d\n", getpid());
	fclose(log);
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[1])) die("chdir");
	child = fork();
	if (child < 0) die("fork");
	if (child == 0) {
		for (;;) pause();
	}
	zombie = fork();
	if (zombie < 0) die("fork");
	if (zombie == 0) _exit(7);
	child_stat = open_proc(child, "stat", O_RDONLY);
	child_dir = open_proc(child, "", O_RDONLY | O_DIRECTORY);
	zombie_stat = open_proc(zombie, "stat", O_RDONLY);
	own_status = open("/proc/self/status", O_RDONLY);
	if (own_status < 0) die("/proc/self/status");
	siginfo_t info;
	if (waitid(P_PID, zombie, &info, WEXITED | WNOWAIT)) die("waitid");

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
