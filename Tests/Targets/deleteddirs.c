/* deleteddirs WORKDIR
 * Directories deleted while a process still uses them, checked after a restore:
 *   WORKDIR/gone-cwd  - mode 0751, the working directory, then removed;
 *   WORKDIR/gone-fd   - mode 0705, open as a descriptor (O_RDONLY | O_DIRECTORY), then removed;
 *   WORKDIR/gone-root - mode 0700, the root and working directory of a child (chroot), then removed.
 * SIGUSR1: checks that the working directory and the descriptor are deleted directories with their mode and no
 * links, /proc/self/cwd naming WORKDIR/gone-cwd (deleted); that a deleted directory cannot be listed or given new
 * entries (ENOENT), as before; and asks the child, which checks its own root the same way (through a pipe: the child
 * sees nothing of the file system but its deleted root). Appends "OK pid=P" or "CORRUPT <what> pid=P" to
 * WORKDIR/deleteddirs.log. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "selfcheck.h"

/* Room for WORKDIR and a name in it. */
#define LONG_PATH (PATH_MAX + 32)

static char workdir[PATH_MAX];
static int dir_fd, ask[2], answer[2];
static pid_t child;
static volatile sig_atomic_t check_requested;

static void on_usr1(int s) { (void)s; check_requested = 1; }

static void in_workdir(char *out, const char *name) { snprintf(out, LONG_PATH, "%s/%s", workdir, name); }

/* Why the directory open as fd is not the deleted one with mode, or NULL. */
static const char *deleted_directory(int fd, mode_t mode)
{
	struct stat st;
	if (fstat(fd, &st) || !S_ISDIR(st.st_mode)) return "not a directory";
	if ((st.st_mode & 07777) != mode) return "mode changed";
	if (st.st_nlink != 0) return "not deleted";
	char entries[256];
	if (syscall(SYS_getdents64, fd, entries, sizeof(entries)) != -1 || errno != ENOENT) return "can be listed";
	if (openat(fd, "new-entry", O_CREAT | O_WRONLY, 0600) != -1 || errno != ENOENT) return "takes new entries";
	return NULL;
}

static void run_child(void)
{
	char path[LONG_PATH];
	in_workdir(path, "gone-root");
	if (mkdir(path, 0700) || chmod(path, 0700) || chroot(path) || chdir("/")) _exit(1);
	if (write(answer[1], "r", 1) != 1) _exit(1);
	for (;;) {
		char c;
		if (read(ask[0], &c, 1) != 1) _exit(0);
		int root = open("/", O_RDONLY | O_DIRECTORY);
		const char *bad = root < 0 ? "cannot open its root" : deleted_directory(root, 0700);
		close(root);
		struct stat cwd, top;
		if (!bad && (stat(".", &cwd) || stat("/", &top) || cwd.st_ino != top.st_ino)) bad = "its working directory is not its root";
		char line[128];
		snprintf(line, sizeof(line), "%s", bad ? bad : "ok");
		if (write(answer[1], line, strlen(line) + 1) < 0) _exit(1);
	}
}

static const char *check(void)
{
	static char what[192];
	char link[LONG_PATH], expected[LONG_PATH];
	ssize_t n = readlink("/proc/self/cwd", link, sizeof(link) - 1);
	if (n < 0) return "no working directory";
	link[n] = 0;
	snprintf(expected, sizeof(expected), "%s/gone-cwd (deleted)", workdir);
	if (strcmp(link, expected)) return "the working directory is not gone-cwd (deleted)";
	int cwd = open(".", O_RDONLY | O_DIRECTORY);
	const char *bad = cwd < 0 ? "cannot open the working directory" : deleted_directory(cwd, 0751);
	close(cwd);
	if (bad) { snprintf(what, sizeof(what), "working directory: %s", bad); return what; }
	if ((bad = deleted_directory(dir_fd, 0705))) { snprintf(what, sizeof(what), "directory fd: %s", bad); return what; }
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", dir_fd);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	snprintf(expected, sizeof(expected), "%s/gone-fd (deleted)", workdir);
	if (strcmp(link, expected)) return "the descriptor is not gone-fd (deleted)";

	char line[128] = "";
	if (write(ask[1], "?", 1) != 1 || read(answer[0], line, sizeof(line)) <= 0) return "the child does not answer";
	if (strcmp(line, "ok")) { snprintf(what, sizeof(what), "child's root: %s", line); return what; }
	return NULL;
}

static void report(const char *bad)
{
	char path[LONG_PATH];
	in_workdir(path, "deleteddirs.log");
	FILE *log = fopen(path, "a");
	if (bad) fprintf(log, "CORRUPT %s pid=%d\n", bad, getpid());
	else fprintf(log, "OK pid=%d\n", getpid());
	fclose(log);
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (!realpath(argv[1], workdir)) die("realpath");
	char path[LONG_PATH];
	if (pipe(ask) || pipe(answer)) die("pipe");

	child = fork();
	if (child < 0) die("fork");
	if (child == 0) run_child();
	char c;
	if (read(answer[0], &c, 1) != 1) die("child");
	in_workdir(path, "gone-root");
	if (rmdir(path)) die("rmdir gone-root");

	in_workdir(path, "gone-fd");
	if (mkdir(path, 0705) || chmod(path, 0705)) die("mkdir gone-fd");
	dir_fd = open(path, O_RDONLY | O_DIRECTORY);
	if (dir_fd < 0 || rmdir(path)) die("gone-fd");

	in_workdir(path, "gone-cwd");
	if (mkdir(path, 0751) || chmod(path, 0751) || chdir(path) || rmdir(path)) die("gone-cwd");

	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);

	char ready[LONG_PATH], temporary[LONG_PATH];
	in_workdir(ready, "ready");
	in_workdir(temporary, "ready.tmp");
	FILE *r = fopen(temporary, "w");
	fprintf(r, "%d\n", getpid());
	fclose(r);
	rename(temporary, ready);

	for (;;) {
		pause();
		if (check_requested) {
			check_requested = 0;
			report(check());
		}
	}
}
