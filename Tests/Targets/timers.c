/* timers WORKDIR
 * POSIX timers that must survive a restore with their ids, clocks, notifications and remaining times:
 *   periodic  - CLOCK_MONOTONIC every 20 ms, SIGEV_SIGNAL SIGRTMIN+3 with value 7 to the process;
 *   far       - CLOCK_REALTIME, one shot 1000 s ahead, SIGEV_NONE (only its remaining time tells it exists);
 *   threaded  - CLOCK_MONOTONIC every 30 ms, SIGEV_THREAD_ID SIGRTMIN+4 to one worker thread.
 * On SIGUSR1 the main thread checks that both periodic timers keep firing with the right value and target, and
 * that the ids still answer timer_gettime with sensible times, then appends "OK pid=P" or "CORRUPT <what> pid=P"
 * to WORKDIR/timers.log. Writes WORKDIR/ready with the pid. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

static timer_t periodic, far, threaded;
static atomic_ulong periodic_fired, threaded_fired;
static atomic_int bad_value, wrong_thread;
static pid_t worker_tid;
static volatile sig_atomic_t check_requested;

static void on_periodic(int s, siginfo_t *info, void *c) { (void)s; (void)c; if (info->si_value.sival_int != 7) bad_value = 1; periodic_fired++; }
static void on_threaded(int s, siginfo_t *info, void *c)
{
	(void)s; (void)c; (void)info;
	if ((pid_t)syscall(SYS_gettid) != worker_tid) wrong_thread = 1;
	threaded_fired++;
}
static void on_usr1(int s) { (void)s; check_requested = 1; }

static void *worker(void *arg)
{
	(void)arg;
	worker_tid = (pid_t)syscall(SYS_gettid);
	for (;;) pause();
	return NULL;
}

static const char *check(void)
{
	unsigned long p = periodic_fired, t = threaded_fired;
	struct timespec wait = { 0, 200 * 1000 * 1000 };
	while (nanosleep(&wait, &wait) != 0) {}
	if (periodic_fired <= p) return "periodic-stopped";
	if (threaded_fired <= t) return "threaded-stopped";
	if (bad_value) return "periodic-value";
	if (wrong_thread) return "threaded-target";
	struct itimerspec spec;
	if (timer_gettime(far, &spec)) return "far-id";
	if (spec.it_value.tv_sec < 500 || spec.it_value.tv_sec > 1000) return "far-remaining";
	if (timer_gettime(periodic, &spec) || spec.it_interval.tv_nsec != 20 * 1000 * 1000) return "periodic-id";
	if (timer_gettime(threaded, &spec) || spec.it_interval.tv_nsec != 30 * 1000 * 1000) return "threaded-id";
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[1])) { perror("chdir"); return 1; }
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_periodic; sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGRTMIN + 3, &sa, NULL);
	sa.sa_sigaction = on_threaded;
	sigaction(SIGRTMIN + 4, &sa, NULL);
	sa.sa_handler = on_usr1; sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);

	pthread_t thread;
	pthread_create(&thread, NULL, worker, NULL);
	while (!worker_tid) usleep(1000);

	struct sigevent se = { 0 };
	se.sigev_notify = SIGEV_SIGNAL; se.sigev_signo = SIGRTMIN + 3; se.sigev_value.sival_int = 7;
	timer_create(CLOCK_MONOTONIC, &se, &periodic);
	memset(&se, 0, sizeof(se));
	se.sigev_notify = SIGEV_NONE;
	timer_create(CLOCK_REALTIME, &se, &far);
	memset(&se, 0, sizeof(se));
	se.sigev_notify = SIGEV_THREAD_ID; se.sigev_signo = SIGRTMIN + 4; se._sigev_un._tid = worker_tid;
	timer_create(CLOCK_MONOTONIC, &se, &threaded);
	struct itimerspec every20 = { { 0, 20 * 1000 * 1000 }, { 0, 20 * 1000 * 1000 } };
	struct itimerspec every30 = { { 0, 30 * 1000 * 1000 }, { 0, 30 * 1000 * 1000 } };
	struct itimerspec later = { { 0, 0 }, { 1000, 0 } };
	timer_settime(periodic, 0, &every20, NULL);
	timer_settime(far, 0, &later, NULL);
	timer_settime(threaded, 0, &every30, NULL);

	/* The worker alone takes SIGRTMIN+4; the main thread takes the others. */
	sigset_t rt4; sigemptyset(&rt4); sigaddset(&rt4, SIGRTMIN + 4);
	pthread_sigmask(SIG_BLOCK, &rt4, NULL);

	announce_ready(getpid());
	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		const char *bad = check();
		FILE *log = fopen("timers.log", "a");
		if (bad) fprintf(log, "CORRUPT %s pid=%d\n", bad, getpid());
		else fprintf(log, "OK pid=%d\n", getpid());
		fclose(log);
	}
}
