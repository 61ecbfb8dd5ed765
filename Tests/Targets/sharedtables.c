/* sharedtables WORKDIR
 * A parent and two children that share what clone(2) lets processes share without sharing memory:
 *   files-sharer - cloned with CLONE_FILES: one descriptor table with the parent
 *   fs-sharer    - cloned with CLONE_FS: one working directory, root and umask with the parent
 *   loner        - forked: shares neither
 * All four hold one open file description of WORKDIR/shared.dat, inherited before the children were made, which the
 * parent also holds twice (dup). On SIGUSR1 the parent checks with kcmp(2) that each child shares exactly what it
 * was cloned to share, then that the sharing works: it opens a descriptor the files-sharer must then find open (and
 * the others not), and changes directory where the fs-sharer must then be (and the others not); it writes through
 * one of its two descriptors of shared.dat, and the other and every child's must then be at the new offset. It
 * appends "OK processes=4 pid=P" or
 * "CORRUPT <what> pid=P" to WORKDIR/sharedtables.log. The children answer through a MAP_SHARED anonymous page.
 * Writes WORKDIR/ready when set up. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

#define KCMP_FILES 2
#define KCMP_FS 3

enum { FILES_SHARER, FS_SHARER, LONER, CHILDREN };
static const char *names[CHILDREN] = { "files-sharer", "fs-sharer", "loner" };

/* One question at a time: the parent sets fd and dir, bumps asked, signals every child and waits until each has
 * answered that round. */
struct shared {
	volatile int asked, answered[CHILDREN];
	volatile int fd;
	char dir[PATH_MAX];
	volatile int fd_open[CHILDREN], in_dir[CHILDREN];
	volatile long offset[CHILDREN];
};
static struct shared *shared;
static pid_t pids[CHILDREN];
static int data, data_again; /* one description of shared.dat, twice in the parent's table */
static volatile sig_atomic_t check_requested, question;
static void on_usr1(int s) { (void)s; check_requested = 1; }
static void on_usr2(int s) { (void)s; question = 1; }

static long kcmp(pid_t a, pid_t b, int type) { return syscall(SYS_kcmp, a, b, type, 0, 0); }

/* Waits for a signal with it blocked until sigsuspend: one that arrives before cannot be missed. */
static void wait_for(volatile sig_atomic_t *flag)
{
	sigset_t empty;
	sigemptyset(&empty);
	while (!*flag) sigsuspend(&empty);
	*flag = 0;
}

static void child(int me)
{
	for (;;) {
		wait_for(&question);
		char cwd[PATH_MAX];
		shared->fd_open[me] = fcntl(shared->fd, F_GETFD) != -1;
		shared->in_dir[me] = getcwd(cwd, sizeof(cwd)) && strcmp(cwd, shared->dir) == 0;
		shared->offset[me] = lseek(data, 0, SEEK_CUR);
		__sync_synchronize();
		shared->answered[me] = shared->asked;
	}
}

static pid_t start(int me, unsigned long flags)
{
	pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) child(me);
	return pid;
}

/* Asks every child where it stands now; 0 when one did not answer within two seconds. */
static int ask(void)
{
	shared->asked++;
	__sync_synchronize();
	for (int i = 0; i < CHILDREN; i++) kill(pids[i], SIGUSR2);
	struct timespec pause_for = { 0, 1000000 };
	for (int tries = 0; tries < 2000; tries++) {
		int all = 1;
		for (int i = 0; i < CHILDREN; i++) all &= shared->answered[i] == shared->asked;
		if (all) return 1;
		nanosleep(&pause_for, NULL);
	}
	return 0;
}

static void check(const char *log_path)
{
	char problem[256] = "";
	pid_t me = getpid();
	const int files_expected[CHILDREN] = { 1, 0, 0 }, fs_expected[CHILDREN] = { 0, 1, 0 };
	for (int i = 0; i < CHILDREN && !problem[0]; i++) {
		if ((kcmp(me, pids[i], KCMP_FILES) == 0) != files_expected[i])
			snprintf(problem, sizeof(problem), "%s %s the descriptor table", names[i], files_expected[i] ? "does not share" : "shares");
		else if ((kcmp(me, pids[i], KCMP_FS) == 0) != fs_expected[i])
			snprintf(problem, sizeof(problem), "%s %s the fs information", names[i], fs_expected[i] ? "does not share" : "shares");
	}
	char home[PATH_MAX - 16];
	if (!problem[0] && !getcwd(home, sizeof(home))) snprintf(problem, sizeof(problem), "getcwd failed");
	if (!problem[0]) {
		/* A descriptor number no process has yet, and a directory nobody is in. */
		int fd = open("/dev/null", O_RDONLY);
		shared->fd = fd;
		snprintf(shared->dir, sizeof(shared->dir), "%s/elsewhere", home);
		mkdir(shared->dir, 0700);
		long offset = lseek(data, 0, SEEK_CUR) + 5;
		if (fd < 0 || chdir(shared->dir) != 0 || write(data, "tick\n", 5) != 5) snprintf(problem, sizeof(problem), "open, chdir or write failed");
		else if (lseek(data_again, 0, SEEK_CUR) != offset) snprintf(problem, sizeof(problem), "the duplicated descriptor is at another offset");
		else if (!ask()) snprintf(problem, sizeof(problem), "a child did not answer");
		for (int i = 0; i < CHILDREN && !problem[0]; i++) {
			if (shared->fd_open[i] != files_expected[i])
				snprintf(problem, sizeof(problem), "%s %s the parent's new descriptor", names[i], files_expected[i] ? "does not see" : "sees");
			else if (shared->in_dir[i] != fs_expected[i])
				snprintf(problem, sizeof(problem), "%s %s the parent's new directory", names[i], fs_expected[i] ? "is not in" : "is in");
			else if (shared->offset[i] != offset)
				snprintf(problem, sizeof(problem), "%s's shared.dat is at %ld, not %ld", names[i], shared->offset[i], offset);
		}
		if (fd >= 0) close(fd);
		if (chdir(home) != 0 && !problem[0]) snprintf(problem, sizeof(problem), "chdir back failed");
	}
	FILE *log = fopen(log_path, "a");
	if (problem[0]) fprintf(log, "CORRUPT %s pid=%d\n", problem, me);
	else fprintf(log, "OK processes=%d pid=%d\n", CHILDREN + 1, me);
	fclose(log);
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[1]) != 0) return 1;
	char log_path[PATH_MAX];
	snprintf(log_path, sizeof(log_path), "%s/sharedtables.log", argv[1]);
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED) return 1;
	data = open("shared.dat", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	data_again = dup(data);
	if (data < 0 || data_again < 0) return 1;
	/* SIGUSR1 and SIGUSR2 come only through sigsuspend; the children inherit the mask and SIGUSR2's handler. */
	sigset_t blocked;
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGUSR1);
	sigaddset(&blocked, SIGUSR2);
	sigprocmask(SIG_BLOCK, &blocked, NULL);
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	pids[FILES_SHARER] = start(FILES_SHARER, CLONE_FILES);
	pids[FS_SHARER] = start(FS_SHARER, CLONE_FS);
	pids[LONER] = start(LONER, 0);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	announce_ready(getpid());
	for (;;) {
		wait_for(&check_requested);
		check(log_path);
	}
}
