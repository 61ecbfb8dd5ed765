/* cgroupthreads WORKDIR CGROUP...
 * A test target whose threads sit in different cgroup v1 cgroups and that checks them itself. For each CGROUP
 * argument (a cgroup path such as /criups-test-1-a, present in the cpu and the memory hierarchies) one worker thread
 * puts itself into that cgroup of both hierarchies (writing its TID to their `tasks`); the main thread stays where it
 * started. Each thread then remembers its cpu and memory lines of /proc/self/task/TID/cgroup. On SIGUSR1 the main
 * thread reads every thread's lines again and appends "OK cgroups threads=N pid=P" to WORKDIR/cgroupthreads.log,
 * or "WRONG thread T: <line> (was <line>) pid=P". Writes WORKDIR/ready with the pid once every thread is placed. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_THREADS 8

struct placed {
	const char *cgroup;
	pid_t tid;
	char lines[2][256]; /* the cpu and the memory line, as first seen */
};

static struct placed threads[MAX_THREADS + 1];
static int count;
static pthread_barrier_t placed;

/* The line of hierarchy NAME ("cpu", "memory") in /proc/self/task/TID/cgroup, into OUT. */
static int read_line(pid_t tid, const char *name, char *out, size_t size)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/self/task/%d/cgroup", tid);
	FILE *f = fopen(path, "r");
	if (!f) return -1;
	int found = -1;
	while (fgets(line, sizeof(line), f)) {
		char *first = strchr(line, ':'), *second = first ? strchr(first + 1, ':') : NULL;
		if (!second) continue;
		if ((size_t)(second - first - 1) == strlen(name) && !strncmp(first + 1, name, strlen(name))) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, size, "%s", first + 1);
			found = 0;
		}
	}
	fclose(f);
	return found;
}

static void join(const char *hierarchy, const char *cgroup, pid_t tid)
{
	char path[512];
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s%s/tasks", hierarchy, cgroup);
	FILE *f = fopen(path, "w");
	if (!f || fprintf(f, "%d", tid) < 0 || fclose(f)) { perror(path); exit(2); }
}

static void remember(struct placed *t)
{
	if (read_line(t->tid, "cpu", t->lines[0], sizeof(t->lines[0])) || read_line(t->tid, "memory", t->lines[1], sizeof(t->lines[1]))) {
		fprintf(stderr, "cannot read the cgroups of %d\n", t->tid);
		exit(2);
	}
}

static void *worker(void *arg)
{
	struct placed *t = arg;
	t->tid = (pid_t)syscall(SYS_gettid);
	join("cpu", t->cgroup, t->tid);
	join("memory", t->cgroup, t->tid);
	remember(t);
	pthread_barrier_wait(&placed);
	for (;;) pause();
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc - 2 > MAX_THREADS) { fprintf(stderr, "usage: cgroupthreads WORKDIR CGROUP...\n"); return 2; }
	const char *work = argv[1];
	count = argc - 1; /* the main thread and one worker per cgroup */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	threads[0].tid = getpid();
	remember(&threads[0]);
	pthread_barrier_init(&placed, NULL, (unsigned)count);
	for (int i = 1; i < count; i++) {
		pthread_t thread;
		threads[i].cgroup = argv[i + 1];
		if (pthread_create(&thread, NULL, worker, &threads[i])) { perror("pthread_create"); return 2; }
	}
	pthread_barrier_wait(&placed);

	char path[512];
	snprintf(path, sizeof(path), "%s/ready", work);
	FILE *ready = fopen(path, "w");
	fprintf(ready, "%d\n", getpid());
	fclose(ready);
	snprintf(path, sizeof(path), "%s/cgroupthreads.log", work);
	for (;;) {
		int signal;
		sigwait(&set, &signal);
		char report[1024] = "";
		for (int i = 0; i < count && !report[0]; i++) {
			for (int h = 0; h < 2 && !report[0]; h++) {
				char now[256] = "(none)";
				read_line(threads[i].tid, h ? "memory" : "cpu", now, sizeof(now));
				if (strcmp(now, threads[i].lines[h]))
					snprintf(report, sizeof(report), "WRONG thread %d: %s (was %s) pid=%d", threads[i].tid, now, threads[i].lines[h], getpid());
			}
		}
		if (!report[0]) snprintf(report, sizeof(report), "OK cgroups threads=%d pid=%d", count, getpid());
		FILE *log = fopen(path, "a");
		fprintf(log, "%s\n", report);
		fclose(log);
		if (signal == SIGTERM) return 0;
	}
}
