/* sleepers WORKDIR [COUNT]
 * COUNT threads (64 by default), each in a loop of 1 ms nanosleeps, counting: a checkpoint finds most of them with
 * well under a millisecond left to wait, so a restore that resumes their sleeps side by side sees many of them end
 * while it still lets the others in. On SIGUSR1 the main thread checks that every counter moves within 200 ms and
 * appends "OK sleepers=N pid=P" or "CORRUPT sleeper-I-stuck pid=P" to WORKDIR/sleepers.log. Writes ./ready. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

#define MAX_SLEEPERS 256
static atomic_ulong counters[MAX_SLEEPERS];

static void *sleeper(void *arg)
{
	int i = (int)(long)arg;
	struct timespec tick = { 0, 1000 * 1000 };
	for (;;) {
		nanosleep(&tick, NULL);
		counters[i]++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR [COUNT]\n", argv[0]); return 2; }
	int count = argc > 2 ? atoi(argv[2]) : 64;
	if (count < 1 || count > MAX_SLEEPERS) { fprintf(stderr, "COUNT: 1 to %d\n", MAX_SLEEPERS); return 2; }
	char log[4096];
	snprintf(log, sizeof(log), "%s/sleepers.log", argv[1]);
	sigset_t wait_for;
	sigemptyset(&wait_for);
	sigaddset(&wait_for, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &wait_for, NULL);
	for (int i = 0; i < count; i++) {
		pthread_t thread;
		if (pthread_create(&thread, NULL, sleeper, (void *)(long)i) != 0) die("pthread_create");
	}
	announce_ready(getpid());
	for (;;) {
		int signal;
		if (sigwait(&wait_for, &signal) != 0) continue;
		unsigned long before[MAX_SLEEPERS];
		for (int i = 0; i < count; i++) before[i] = counters[i];
		struct timespec pause = { 0, 200 * 1000 * 1000 };
		nanosleep(&pause, NULL);
		int stuck = -1;
		for (int i = 0; i < count && stuck < 0; i++) if (counters[i] == before[i]) stuck = i;
		FILE *file = fopen(log, "a");
		if (!file) die("log");
		if (stuck < 0) fprintf(file, "OK sleepers=%d pid=%d\n", count, getpid());
		else fprintf(file, "CORRUPT sleeper-%d-stuck pid=%d\n", stuck, getpid());
		fclose(file);
	}
}
