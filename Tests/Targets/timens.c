/* timens WORKDIR: nested time namespaces.
 * The root makes time namespace A (CLOCK_MONOTONIC +1000000 s, CLOCK_BOOTTIME +2000000 s) and enters it, then makes
 * B (+5000000 s, +6000000 s) for its children only (its time_for_children) and forks a child, born in B. Each
 * records its clocks before WORKDIR/ready. On SIGUSR1 the root checks, in itself and (through pipes) in the child:
 * - the vDSO's clock_gettime (the timens vvar page) and the system call agree, for both clocks;
 * - neither clock went backwards, nor forwards by more than the real time that passed (they go on from where they
 *   were: the time spent saved does not count);
 * - the child's clocks are still 4000000 s ahead of the root's (the offsets between namespaces are kept);
 * - a child forked now is born in B (the root's time_for_children): its monotonic clock is the child's, within 5 s;
 * and appends "OK pid=P" or "FAIL what pid=P" to WORKDIR/timens.log. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

struct clocks {
	double monotonic, boottime, realtime; /* as the vDSO answers, in seconds */
	int vdso_agrees;                      /* 1 when the system call says the same within 1 s */
};

static volatile sig_atomic_t check_requested;

static void on_usr1(int s) { (void)s; check_requested = 1; }

static double seconds(struct timespec t) { return t.tv_sec + t.tv_nsec / 1e9; }

static double vdso_clock(clockid_t clock)
{
	struct timespec t;
	if (clock_gettime(clock, &t) != 0) die("clock_gettime");
	return seconds(t);
}

static double syscall_clock(clockid_t clock)
{
	struct timespec t;
	if (syscall(SYS_clock_gettime, clock, &t) != 0) die("SYS_clock_gettime");
	return seconds(t);
}

static struct clocks read_clocks(void)
{
	struct clocks c = { vdso_clock(CLOCK_MONOTONIC), vdso_clock(CLOCK_BOOTTIME), vdso_clock(CLOCK_REALTIME), 1 };
	if (syscall_clock(CLOCK_MONOTONIC) - c.monotonic > 1 || syscall_clock(CLOCK_BOOTTIME) - c.boottime > 1) c.vdso_agrees = 0;
	return c;
}

/* A new time namespace for the children of this process, its clocks moved by these offsets. */
static void make_namespace(long monotonic, long boottime)
{
	if (unshare(CLONE_NEWTIME) != 0) die("unshare(CLONE_NEWTIME)");
	char offsets[128];
	int length = snprintf(offsets, sizeof offsets, "%d %ld 0\n%d %ld 0\n", CLOCK_MONOTONIC, monotonic, CLOCK_BOOTTIME, boottime);
	int fd = open("/proc/self/timens_offsets", O_WRONLY);
	if (fd < 0 || write(fd, offsets, length) != length) die("timens_offsets");
	close(fd);
}

static void enter_childrens_namespace(void)
{
	int fd = open("/proc/self/ns/time_for_children", O_RDONLY);
	if (fd < 0 || setns(fd, CLONE_NEWTIME) != 0) die("setns(time_for_children)");
	close(fd);
}

/* Empty when the clocks went on from `before` by no more than the real time that passed; else what went wrong. */
static const char *went_on(struct clocks before, struct clocks now)
{
	double real = now.realtime - before.realtime + 2;
	if (!now.vdso_agrees) return "the vDSO and the system call disagree";
	if (now.monotonic < before.monotonic) return "CLOCK_MONOTONIC went backwards";
	if (now.boottime < before.boottime) return "CLOCK_BOOTTIME went backwards";
	if (now.monotonic - before.monotonic > real) return "CLOCK_MONOTONIC jumped forwards";
	if (now.boottime - before.boottime > real) return "CLOCK_BOOTTIME jumped forwards";
	return "";
}

int main(int argc, char **argv)
{
	if (argc != 2 || chdir(argv[1]) != 0) die("usage: timens WORKDIR");
	FILE *log = fopen("timens.log", "a");
	if (!log) die("log");
	setvbuf(log, NULL, _IOLBF, 0);
	make_namespace(1000000, 2000000);
	enter_childrens_namespace();
	make_namespace(5000000, 6000000);
	int ask[2], answer[2];
	if (pipe(ask) != 0 || pipe(answer) != 0) die("pipe");
	pid_t child = fork();
	if (child < 0) die("fork");
	if (child == 0) {
		/* Born in B; answers each byte on `ask` with its clocks and whether they went on. */
		struct clocks start = read_clocks();
		char byte;
		while (read(ask[0], &byte, 1) == 1) {
			struct { struct clocks now; char problem[64]; } reply = { read_clocks(), "" };
			snprintf(reply.problem, sizeof reply.problem, "%s", went_on(start, reply.now));
			if (write(answer[1], &reply, sizeof reply) != sizeof reply) _exit(1);
		}
		_exit(0);
	}
	struct clocks start = read_clocks();
	signal(SIGUSR1, on_usr1);
	announce_ready(getpid());
	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		char problem[160] = "";
		struct clocks now = read_clocks();
		struct { struct clocks now; char problem[64]; } reply;
		if (write(ask[1], "?", 1) != 1 || read(answer[0], &reply, sizeof reply) != sizeof reply) {
			snprintf(problem, sizeof problem, "the child does not answer");
		} else if (*went_on(start, now)) {
			snprintf(problem, sizeof problem, "root: %s", went_on(start, now));
		} else if (*reply.problem) {
			snprintf(problem, sizeof problem, "child: %s", reply.problem);
		} else if (reply.now.monotonic - now.monotonic < 4000000 - 5 || reply.now.monotonic - now.monotonic > 4000000 + 5 ||
			   reply.now.boottime - now.boottime < 4000000 - 5 || reply.now.boottime - now.boottime > 4000000 + 5) {
			snprintf(problem, sizeof problem, "the child's clocks are %.0f/%.0f s ahead of the root's, not 4000000",
				 reply.now.monotonic - now.monotonic, reply.now.boottime - now.boottime);
		} else {
			/* A child born now: in the root's time_for_children, B. */
			int born[2];
			double its = 0;
			if (pipe(born) != 0) die("pipe");
			pid_t late = fork();
			if (late == 0) {
				double mine = vdso_clock(CLOCK_MONOTONIC);
				_exit(write(born[1], &mine, sizeof mine) == sizeof mine ? 0 : 1);
			}
			if (late < 0 || read(born[0], &its, sizeof its) != sizeof its) snprintf(problem, sizeof problem, "a late child does not answer");
			else if (its - reply.now.monotonic > 5 || reply.now.monotonic - its > 5)
				snprintf(problem, sizeof problem, "a child born now is not in the time namespace of the first (%.0f s apart)", its - reply.now.monotonic);
			waitpid(late, NULL, 0);
			close(born[0]);
			close(born[1]);
		}
		if (*problem) fprintf(log, "FAIL %s pid=%d\n", problem, getpid());
		else fprintf(log, "OK pid=%d\n", getpid());
	}
}
