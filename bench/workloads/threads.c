/* threads COUNT LOGFILE
 * A benchmark workload with COUNT threads, each counting in its own loop with a short sleep. On SIGUSR1 the main
 * thread checks that every counter moves and appends "OK pid=P" or "CORRUPT thread=N pid=P" to LOGFILE. Writes
 * ./ready with its pid when every thread runs. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static atomic_ulong *counters;
static atomic_int started;

static void *worker(void *arg)
{
	atomic_ulong *counter = arg;
	started++;
	struct timespec tick = { 0, 5 * 1000 * 1000 };
	for (;;) { nanosleep(&tick, NULL); (*counter)++; }
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: %s COUNT LOGFILE\n", argv[0]); return 2; }
	int count = atoi(argv[1]);
	counters = calloc(count, sizeof(*counters));
	sigset_t usr1; sigemptyset(&usr1); sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	for (int i = 0; i < count; i++) { pthread_t t; pthread_create(&t, NULL, worker, &counters[i]); }
	while (started < count) usleep(1000);
	FILE *ready = fopen("ready.tmp", "w");
	fprintf(ready, "%d\n", getpid());
	fclose(ready);
	rename("ready.tmp", "ready");
	for (;;) {
		int sig;
		sigwait(&usr1, &sig);
		unsigned long *before = malloc(count * sizeof(*before));
		for (int i = 0; i < count; i++) before[i] = counters[i];
		usleep(100 * 1000);
		int bad = -1;
		for (int i = 0; i < count; i++) if (counters[i] == before[i]) { bad = i; break; }
		free(before);
		FILE *log = fopen(argv[2], "a");
		if (bad < 0) fprintf(log, "OK pid=%d\n", getpid());
		else fprintf(log, "CORRUPT thread=%d pid=%d\n", bad, getpid());
		fclose(log);
	}
}
