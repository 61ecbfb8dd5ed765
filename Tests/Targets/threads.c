/* threads WORKDIR
 * A multi-threaded test target that checks its own threads after a restore. 16 worker threads each own a
 * counter, a thread-local pattern (TLS through fs_base), a name ("worker-N"), a per-thread signal mask and
 * their TID; most of them sleep in nanosleep, worker 14 blocks in read() on a pipe and worker 15 in
 * pthread_cond_timedwait (a futex), so a checkpoint finds threads in several system calls. The main thread
 * waits in sigwaitinfo for SIGUSR1 (check) and SIGTERM (check and exit); on each it verifies that every
 * counter moves, every thread still sees its own TLS, name and TID, and appends "OK threads=16 pid=P" or
 * "CORRUPT <what> pid=P" (EXIT ... on SIGTERM) to WORKDIR/threads.log. Writes WORKDIR/ready with the pid. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

#define WORKERS 16

static _Thread_local unsigned long tls_pattern;
static atomic_ulong counters[WORKERS];
static atomic_int problems[WORKERS];
static pid_t tids[WORKERS];
static int wake_pipe[2];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static unsigned long pattern_of(int i) { return 0xC0FFEE00ul + (unsigned long)i * 0x10001ul; }

/* 1 TLS, 2 name, 3 tid, 4 signal mask */
static void check_self(int i)
{
	char name[16] = { 0 }, want[16];
	snprintf(want, sizeof(want), "worker-%d", i);
	prctl(PR_GET_NAME, name);
	sigset_t mask;
	pthread_sigmask(SIG_BLOCK, NULL, &mask);
	if (tls_pattern != pattern_of(i)) problems[i] = 1;
	else if (strcmp(name, want)) problems[i] = 2;
	else if ((pid_t)syscall(SYS_gettid) != tids[i]) problems[i] = 3;
	else if (!sigismember(&mask, SIGUSR1) || sigismember(&mask, SIGUSR2) != (i % 2)) problems[i] = 4;
}

static void *worker(void *arg)
{
	int i = (int)(long)arg;
	char name[16];
	snprintf(name, sizeof(name), "worker-%d", i);
	prctl(PR_SET_NAME, name);
	tls_pattern = pattern_of(i);
	tids[i] = (pid_t)syscall(SYS_gettid);
	if (i % 2) { sigset_t odd; sigemptyset(&odd); sigaddset(&odd, SIGUSR2); pthread_sigmask(SIG_BLOCK, &odd, NULL); }
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	for (;;) {
		if (i == 14) {
			char c;
			if (read(wake_pipe[0], &c, 1) != 1) problems[i] = 5;
		} else if (i == 15) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 10 * 1000 * 1000;
			if (until.tv_nsec >= 1000000000) { until.tv_sec++; until.tv_nsec -= 1000000000; }
			pthread_mutex_lock(&lock);
			pthread_cond_timedwait(&cond, &lock, &until);
			pthread_mutex_unlock(&lock);
		} else {
			nanosleep(&tick, NULL);
		}
		check_self(i);
		counters[i]++;
	}
	return NULL;
}

static const char *check_all(void)
{
	static char what[64];
	unsigned long before[WORKERS];
	for (int i = 0; i < WORKERS; i++) before[i] = counters[i];
	for (int round = 0; round < 20; round++) {
		if (write(wake_pipe[1], "w", 1) != 1) return "pipe";
		struct timespec pause = { 0, 20 * 1000 * 1000 };
		nanosleep(&pause, NULL);
	}
	for (int i = 0; i < WORKERS; i++) {
		if (problems[i]) { snprintf(what, sizeof(what), "worker-%d-problem-%d", i, problems[i]); return what; }
		if (counters[i] == before[i]) { snprintf(what, sizeof(what), "worker-%d-stuck", i); return what; }
	}
	return NULL;
}

static void report(const char *prefix, const char *bad)
{
	FILE *log = fopen("threads.log", "a");
	if (bad) fprintf(log, "%sCORRUPT %s pid=%d\n", prefix, bad, getpid());
	else fprintf(log, "%sOK threads=%d pid=%d\n", prefix, WORKERS, getpid());
	fclose(log);
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[1])) { perror("chdir"); return 1; }
	if (pipe(wake_pipe)) { perror("pipe"); return 1; }
	sigset_t waited;
	sigemptyset(&waited);
	sigaddset(&waited, SIGUSR1);
	sigaddset(&waited, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &waited, NULL); /* inherited by every worker */
	pthread_t threads[WORKERS];
	for (int i = 0; i < WORKERS; i++) pthread_create(&threads[i], NULL, worker, (void *)(long)i);
	for (int i = 0; i < WORKERS; i++) while (!tids[i]) usleep(1000);
	announce_ready(getpid());
	for (;;) {
		int sig = sigwaitinfo(&waited, NULL);
		if (sig == SIGUSR1) report("", check_all());
		else if (sig == SIGTERM) { report("EXIT ", check_all()); return 0; }
	}
}
