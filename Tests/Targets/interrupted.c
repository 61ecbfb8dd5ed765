/* interrupted WORKDIR SECONDS [left-running]
 * One thread per system call that waits with a timeout, each started at once with SECONDS to wait on something that
 * never comes, so that a checkpoint finds them all waiting:
 *   poll, ppoll, select, pselect6, epoll_wait, epoll_pwait (no signal mask) - on a pipe nobody writes to
 *   nanosleep (with a remaining-time argument), nanosleep-norem (without), clock_nanosleep (relative),
 *   clock_nanosleep-abs (TIMER_ABSTIME)       - CLOCK_MONOTONIC
 *   futex-wait (FUTEX_WAIT, relative timeout), futex-bitset-abs (FUTEX_WAIT_BITSET, absolute CLOCK_MONOTONIC)
 * Each records when its call returned and what it returned. A ticker thread sleeps 2 ms at a time and keeps the
 * longest gap between two ticks: the time the process did not run (the checkpoint's freeze to the restore, or to
 * the release with left-running); WORKDIR/threads names each call's thread and the ticker's ("NAME TID"). A relative wait must return SECONDS after it began plus that gap (the time it had
 * left counts from the restore); an absolute one at its deadline, or when the process runs again if that is later.
 * With left-running (the checkpoint left the process running), the kernel resumes each call as after any stop, and
 * CriuPS leaves it so: the calls that keep their deadline in the thread's restart block (poll, nanosleep with or
 * without remaining time, relative clock_nanosleep, FUTEX_WAIT) end at that deadline, as absolute waits do (the
 * freeze counted as waiting); select, pselect6 and ppoll, which wrote back the time they had left, wait it out from
 * the release; epoll_wait and epoll_pwait fail with EINTR as the process runs again (signal(7)).
 * On SIGUSR1 the main thread waits for every call to return (SIGUSR1 is blocked in every thread: no call sees it),
 * writes one line per call to WORKDIR/calls ("NAME result=R deviation=+S.SSS": seconds after the expected return,
 * negative when early) and appends to WORKDIR/interrupted.log "OK calls=12 gap=G" or "CORRUPT NAME <what>": each
 * call returned what a timeout returns (0, or ETIMEDOUT for the futex waits) within 1 s before and 1 s after its
 * expected time (early: the restore hands a restart-block call its time left during its last phase, a moment before
 * the process runs again: milliseconds on an idle machine, 0.8 s was seen under a load of 20 on 2 cores; late: a busy
 * machine may be slow to run the woken thread). The test keeps the process down for 3 s, so that a relative wait
 * that ended at its old deadline, or failed with EINTR at the restore, is still far outside. WORKDIR/ready holds the pid once
 * every call waits in the kernel. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS 2000000L
#define EARLY_TOLERANCE_NS 1000000000L
#define LATE_TOLERANCE_NS 1000000000L

enum { POLL, PPOLL, SELECT, PSELECT6, EPOLL_WAIT, EPOLL_PWAIT, NANOSLEEP, NANOSLEEP_NOREM, CLOCK_NANOSLEEP,
       CLOCK_NANOSLEEP_ABS, FUTEX_WAIT_REL, FUTEX_BITSET_ABS, COUNT };
static const char *names[COUNT] = { "poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "nanosleep",
	"nanosleep-norem", "clock_nanosleep", "clock_nanosleep-abs", "futex-wait", "futex-bitset-abs" };
static const int absolute[COUNT] = { [CLOCK_NANOSLEEP_ABS] = 1, [FUTEX_BITSET_ABS] = 1 };
/* The calls whose deadline the kernel keeps in the restart block, absolute, when they are interrupted by a stop. */
static const int restart_block[COUNT] = { [POLL] = 1, [NANOSLEEP] = 1, [NANOSLEEP_NOREM] = 1, [CLOCK_NANOSLEEP] = 1,
	[FUTEX_WAIT_REL] = 1 };

struct call { pthread_t thread; atomic_int tid; long started, returned, result; int error; };
static struct call calls[COUNT];
static long wait_ns;
static int never_ready[2], epfd, left_running;
static atomic_int futex_word;
static atomic_long longest_gap, gap_end;
static atomic_int ticker_tid;

static long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000L + t.tv_nsec;
}

static struct timespec timespec_of(long ns) { return (struct timespec){ ns / 1000000000L, ns % 1000000000L }; }

static long run(int kind, long start)
{
	struct timespec ts = timespec_of(wait_ns), rem, deadline = timespec_of(start + wait_ns);
	struct timeval tv = { wait_ns / 1000000000L, (wait_ns % 1000000000L) / 1000 };
	struct pollfd pfd = { .fd = never_ready[0], .events = POLLIN };
	struct epoll_event event;
	fd_set set;
	FD_ZERO(&set);
	FD_SET(never_ready[0], &set);
	switch (kind) {
	case POLL: return syscall(SYS_poll, &pfd, 1, (int)(wait_ns / 1000000));
	case PPOLL: return syscall(SYS_ppoll, &pfd, 1, &ts, NULL, 8);
	case SELECT: return syscall(SYS_select, never_ready[0] + 1, &set, NULL, NULL, &tv);
	case PSELECT6: return syscall(SYS_pselect6, never_ready[0] + 1, &set, NULL, NULL, &ts, NULL);
	case EPOLL_WAIT: return syscall(SYS_epoll_wait, epfd, &event, 1, (int)(wait_ns / 1000000));
	case EPOLL_PWAIT: return syscall(SYS_epoll_pwait, epfd, &event, 1, (int)(wait_ns / 1000000), NULL, 8);
	case NANOSLEEP: return syscall(SYS_nanosleep, &ts, &rem);
	case NANOSLEEP_NOREM: return syscall(SYS_nanosleep, &ts, NULL);
	case CLOCK_NANOSLEEP: return syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, &rem);
	case CLOCK_NANOSLEEP_ABS: return syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
	case FUTEX_WAIT_REL: return syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
	case FUTEX_BITSET_ABS: return syscall(SYS_futex, &futex_word, FUTEX_WAIT_BITSET_PRIVATE, 0, &deadline, NULL, FUTEX_BITSET_MATCH_ANY);
	}
	return -1;
}

static void *caller(void *arg)
{
	struct call *c = arg;
	int kind = (int)(c - calls);
	c->started = now_ns();
	atomic_store(&c->tid, (int)syscall(SYS_gettid));
	long result = run(kind, c->started);
	c->returned = now_ns();
	c->error = result < 0 ? errno : 0;
	c->result = result;
	return NULL;
}

static void *ticker(void *arg)
{
	(void)arg;
	atomic_store(&ticker_tid, (int)syscall(SYS_gettid));
	struct timespec tick = timespec_of(TICK_NS);
	long last = now_ns();
	for (;;) {
		syscall(SYS_nanosleep, &tick, NULL);
		long now = now_ns();
		if (now - last - TICK_NS > atomic_load(&longest_gap)) {
			atomic_store(&longest_gap, now - last - TICK_NS);
			atomic_store(&gap_end, now);
		}
		last = now;
	}
	return NULL;
}

/* Whether thread TID sleeps in the kernel (state S in its stat). */
static int sleeping(int tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	FILE *f = fopen(path, "r");
	if (!f) return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *close = strrchr(buf, ')');
	return close && close[2] == 'S';
}

/* What the call of KIND must have done, NULL when it did; *deviation: how late it returned, in nanoseconds. */
static const char *verdict(int kind, long *deviation)
{
	struct call *c = &calls[kind];
	long gap = atomic_load(&longest_gap), resumed = atomic_load(&gap_end);
	int epoll = kind == EPOLL_WAIT || kind == EPOLL_PWAIT;
	long expected = left_running && epoll ? resumed
		: absolute[kind] || (left_running && restart_block[kind]) ? (c->started + wait_ns > resumed ? c->started + wait_ns : resumed)
		: c->started + wait_ns + gap;
	*deviation = c->returned - expected;
	if (left_running && epoll) {
		/* EINTR as the process runs again after the freeze (SIGUSR1 is blocked: nothing else interrupts it). On a
		 * loaded machine the longest gap may be another stall than the freeze, so what counts is the error, and that
		 * it came before the call's own timeout. */
		if (c->result != -1 || c->error != EINTR) return "result";
		return c->returned > c->started + wait_ns ? "late" : NULL;
	}
	int want_error = kind == FUTEX_WAIT_REL || kind == FUTEX_BITSET_ABS ? ETIMEDOUT : 0;
	if (want_error ? c->result != -1 || c->error != want_error : c->result != 0) return "result";
	if (*deviation < -EARLY_TOLERANCE_NS) return "early";
	if (*deviation > LATE_TOLERANCE_NS) return "late";
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: %s WORKDIR SECONDS [left-running]\n", argv[0]); return 2; }
	if (chdir(argv[1])) return 1;
	wait_ns = atol(argv[2]) * 1000000000L;
	left_running = argc > 3 && strcmp(argv[3], "left-running") == 0;
	if (pipe(never_ready)) return 1;
	epfd = epoll_create1(0);
	struct epoll_event event = { .events = EPOLLIN };
	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, never_ready[0], &event)) return 1;

	/* Blocked here, so in every thread: the checks are asked for with SIGUSR1, which must interrupt no call. */
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);

	pthread_t tick;
	pthread_create(&tick, NULL, ticker, NULL);
	for (int i = 0; i < COUNT; i++) pthread_create(&calls[i].thread, NULL, caller, &calls[i]);
	for (int i = 0; i < COUNT; i++)
		while (!atomic_load(&calls[i].tid) || !sleeping(atomic_load(&calls[i].tid))) usleep(1000);
	/* The gap of the start-up (threads being created) is not the checkpoint's. */
	atomic_store(&longest_gap, 0);
	FILE *threads = fopen("threads", "w");
	for (int i = 0; i < COUNT; i++) fprintf(threads, "%s %d\n", names[i], atomic_load(&calls[i].tid));
	while (!atomic_load(&ticker_tid)) usleep(1000);
	fprintf(threads, "ticker %d\n", atomic_load(&ticker_tid));
	fclose(threads);
	FILE *ready = fopen("ready", "w");
	fprintf(ready, "%d\n", getpid());
	fclose(ready);

	for (;;) {
		int signal;
		sigwait(&usr1, &signal);
		for (int i = 0; i < COUNT; i++)
			if (calls[i].thread) pthread_join(calls[i].thread, NULL), calls[i].thread = 0;
		FILE *details = fopen("calls", "w");
		const char *bad = NULL;
		int bad_kind = 0;
		for (int i = 0; i < COUNT; i++) {
			long deviation;
			const char *what = verdict(i, &deviation);
			fprintf(details, "%s result=%ld%s%s deviation=%+.3f\n", names[i], calls[i].result, calls[i].error ? " errno=" : "",
				calls[i].error ? strerrorname_np(calls[i].error) : "", deviation / 1e9);
			if (what && !bad) bad = what, bad_kind = i;
		}
		fclose(details);
		FILE *log = fopen("interrupted.log", "a");
		if (bad) fprintf(log, "CORRUPT %s %s\n", names[bad_kind], bad);
		else fprintf(log, "OK calls=%d gap=%.3f\n", COUNT, atomic_load(&longest_gap) / 1e9);
		fclose(log);
	}
}
