/* attributes WORKDIR
 * The attributes a process and each of its threads set for themselves, that no other test target looks at:
 *   process - personality ADDR_NO_RANDOMIZE, child subreaper, ITIMER_VIRTUAL and ITIMER_PROF armed with long
 *             intervals (ITIMER_REAL is selfcheck's)
 *   each of the two threads - its rseq registration (glibc's), robust futex list and clear_child_tid address as
 *             they were; the main thread SCHED_BATCH at nice 3, the worker SCHED_IDLE at nice 7 (each thread has
 *             its own; a real-time policy is left out, as a cgroup may forbid it); the worker its own sigaltstack and a
 *             SIGRTMIN+3 queued to it alone, with value 77, blocked
 * On SIGUSR1 the main thread checks its own and the process's, asks the worker to check its own, and appends
 * "OK pid=P" or "CORRUPT <what> pid=P" to WORKDIR/attributes.log. Writes WORKDIR/ready when set up. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>
#include "selfcheck.h"

#define QUEUED (SIGRTMIN + 3)
#define QUEUED_VALUE 77
#define RSEQ_AREA_LENGTH 32 /* what glibc registers: struct rseq padded to 32 bytes */

/* What a thread finds of itself at the start, to compare with later. */
struct self {
	void *robust_head;
	size_t robust_length;
	int *tid_address;
};

static volatile sig_atomic_t check_requested;
static void on_usr1(int s) { (void)s; check_requested = 1; }

static pthread_t worker;
static sem_t asked, answered;
static char worker_problem[128];
static char alt_stack[64 * 1024];

static void remember(struct self *self)
{
	syscall(SYS_get_robust_list, 0, &self->robust_head, &self->robust_length);
	prctl(PR_GET_TID_ADDRESS, &self->tid_address);
}

/* The checks every thread makes of itself; "" when all hold. */
static void check_thread(const struct self *self, int policy, int nice, char *problem, size_t size)
{
	struct self now;
	struct sched_param param;
	remember(&now);
	void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
	/* Registering the area again fails with EBUSY exactly when this very area is registered already. */
	long again = syscall(SYS_rseq, area, RSEQ_AREA_LENGTH, 0, RSEQ_SIG);
	if (again != -1 || errno != EBUSY)
		snprintf(problem, size, "rseq not registered (%ld, %s)", again, strerror(errno));
	else if (now.robust_head != self->robust_head || now.robust_length != self->robust_length)
		snprintf(problem, size, "robust list %p/%zu, was %p/%zu", now.robust_head, now.robust_length, self->robust_head, self->robust_length);
	else if (now.tid_address != self->tid_address)
		snprintf(problem, size, "clear_child_tid %p, was %p", (void *)now.tid_address, (void *)self->tid_address);
	else if (sched_getscheduler(0) != policy || sched_getparam(0, &param) != 0 || param.sched_priority != 0)
		snprintf(problem, size, "scheduling policy %d, not %d", sched_getscheduler(0), policy);
	else if (getpriority(PRIO_PROCESS, (id_t)gettid()) != nice)
		snprintf(problem, size, "nice %d, not %d", getpriority(PRIO_PROCESS, (id_t)gettid()), nice);
}

static void *work(void *unused)
{
	(void)unused;
	struct self self;
	remember(&self);
	struct sched_param param = { 0 };
	sched_setscheduler(0, SCHED_IDLE, &param);
	setpriority(PRIO_PROCESS, (id_t)gettid(), 7);
	stack_t ss = { .ss_sp = alt_stack, .ss_size = sizeof(alt_stack), .ss_flags = 0 };
	sigaltstack(&ss, NULL);
	sem_post(&answered);
	for (;;) {
		while (sem_wait(&asked) != 0) {}
		worker_problem[0] = 0;
		check_thread(&self, SCHED_IDLE, 7, worker_problem, sizeof(worker_problem));
		stack_t now;
		sigset_t pending;
		sigpending(&pending);
		if (!worker_problem[0] && (sigaltstack(NULL, &now) != 0 || now.ss_sp != alt_stack || now.ss_size != sizeof(alt_stack)))
			snprintf(worker_problem, sizeof(worker_problem), "sigaltstack %p/%zu", now.ss_sp, now.ss_size);
		else if (!worker_problem[0] && !sigismember(&pending, QUEUED))
			snprintf(worker_problem, sizeof(worker_problem), "SIGRTMIN+3 not pending");
		else if (!worker_problem[0]) {
			/* Take it to see its value, then queue it again for the next check. */
			sigset_t one;
			siginfo_t info;
			struct timespec none = { 0, 0 };
			sigemptyset(&one);
			sigaddset(&one, QUEUED);
			if (sigtimedwait(&one, &info, &none) != QUEUED || info.si_value.sival_int != QUEUED_VALUE)
				snprintf(worker_problem, sizeof(worker_problem), "SIGRTMIN+3 without its value");
			pthread_sigqueue(pthread_self(), QUEUED, (union sigval){ .sival_int = QUEUED_VALUE });
		}
		sem_post(&answered);
	}
	return NULL;
}

static int armed(int which, long interval)
{
	struct itimerval value;
	return getitimer(which, &value) == 0 && value.it_interval.tv_sec == interval && value.it_interval.tv_usec == 0
	       && (value.it_value.tv_sec > 0 || value.it_value.tv_usec > 0);
}

static void check(const char *log_path, const struct self *self)
{
	char problem[160] = "";
	int subreaper = 0;
	prctl(PR_GET_CHILD_SUBREAPER, &subreaper);
	check_thread(self, SCHED_BATCH, 3, problem, sizeof(problem));
	if (problem[0]) {
	} else if (personality(0xffffffff) != ADDR_NO_RANDOMIZE)
		snprintf(problem, sizeof(problem), "personality %x", personality(0xffffffff));
	else if (!subreaper)
		snprintf(problem, sizeof(problem), "not a child subreaper");
	else if (!armed(ITIMER_VIRTUAL, 1000))
		snprintf(problem, sizeof(problem), "ITIMER_VIRTUAL not armed");
	else if (!armed(ITIMER_PROF, 2000))
		snprintf(problem, sizeof(problem), "ITIMER_PROF not armed");
	else {
		sem_post(&asked);
		struct timespec deadline;
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += 5;
		if (sem_timedwait(&answered, &deadline) != 0)
			snprintf(problem, sizeof(problem), "the worker did not answer");
		else if (worker_problem[0])
			snprintf(problem, sizeof(problem), "worker: %s", worker_problem);
	}
	FILE *log = fopen(log_path, "a");
	if (problem[0]) fprintf(log, "CORRUPT %s pid=%d\n", problem, getpid());
	else fprintf(log, "OK pid=%d\n", getpid());
	fclose(log);
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	char log_path[4096];
	snprintf(log_path, sizeof(log_path), "%s/attributes.log", argv[1]);
	if (chdir(argv[1]) != 0) return 1;
	struct self self;
	remember(&self);
	/* Only the main thread takes SIGUSR1; only the worker could take SIGRTMIN+3, and it keeps it blocked. */
	sigset_t blocked;
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGUSR1);
	sigaddset(&blocked, QUEUED);
	pthread_sigmask(SIG_BLOCK, &blocked, NULL);
	sem_init(&asked, 0, 0);
	sem_init(&answered, 0, 0);
	if (pthread_create(&worker, NULL, work, NULL) != 0) return 1;
	while (sem_wait(&answered) != 0) {}
	pthread_sigqueue(worker, QUEUED, (union sigval){ .sival_int = QUEUED_VALUE });

	struct sched_param param = { 0 };
	if (sched_setscheduler(0, SCHED_BATCH, &param) != 0 || setpriority(PRIO_PROCESS, (id_t)gettid(), 3) != 0) return 1;
	if (personality(ADDR_NO_RANDOMIZE) == -1 || prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return 1;
	struct itimerval virtual_timer = { { 1000, 0 }, { 1000, 0 } }, profiling_timer = { { 2000, 0 }, { 2000, 0 } };
	if (setitimer(ITIMER_VIRTUAL, &virtual_timer, NULL) != 0 || setitimer(ITIMER_PROF, &profiling_timer, NULL) != 0) return 1;
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);

	announce_ready(getpid());
	for (;;) {
		pause();
		if (check_requested) {
			check_requested = 0;
			check(log_path, &self);
		}
	}
}
