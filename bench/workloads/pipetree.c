/* pipetree COUNT LOGFILE
 * A benchmark workload: a chain of COUNT processes (the root and COUNT-1 descendants, each the child of the
 * previous) passing a counter around a ring of pipes; each adds one. On SIGUSR1 the root checks that the token
 * still travels and its value is consistent (a multiple of COUNT after each full round) and appends "OK pid=P" or
 * "CORRUPT pid=P" to LOGFILE. Writes ./ready with the root's pid once the ring runs. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile sig_atomic_t check_requested;
static void on_usr1(int s) { (void)s; check_requested = 1; }

static void relay(int in, int out)
{
	for (;;) {
		uint64_t token;
		if (read(in, &token, sizeof(token)) != sizeof(token)) _exit(1);
		token++;
		if (write(out, &token, sizeof(token)) != sizeof(token)) _exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: %s COUNT LOGFILE\n", argv[0]); return 2; }
	int count = atoi(argv[1]);
	int (*rings)[2] = calloc(count, sizeof(*rings));
	for (int i = 0; i < count; i++) if (pipe(rings[i])) return 1;
	/* Process i reads ring[i] and writes ring[(i + 1) % count]; process i + 1 is forked by process i. */
	int me = 0;
	while (me < count - 1) {
		if (fork() != 0) break;
		me++;
	}
	if (me != 0) relay(rings[me][0], rings[(me + 1) % count][1]);
	signal(SIGUSR1, on_usr1);
	uint64_t token = 0, rounds = 0;
	if (write(rings[1 % count][1], &token, sizeof(token)) != sizeof(token)) return 1;
	FILE *ready = fopen("ready.tmp", "w");
	fprintf(ready, "%d\n", getpid());
	fclose(ready);
	rename("ready.tmp", "ready");
	int bad = 0;
	for (;;) {
		ssize_t n = read(rings[0][0], &token, sizeof(token));
		if (n == sizeof(token)) {
			rounds++;
			if (token != rounds * (uint64_t)(count - 1) + (rounds - 1)) bad = 1;
			token++;
			if (write(rings[1 % count][1], &token, sizeof(token)) != sizeof(token)) bad = 1;
		}
		if (check_requested) {
			check_requested = 0;
			uint64_t before = rounds;
			while (rounds < before + 3) {
				if (read(rings[0][0], &token, sizeof(token)) != sizeof(token)) { bad = 1; break; }
				rounds++;
				if (token != rounds * (uint64_t)(count - 1) + (rounds - 1)) bad = 1;
				token++;
				if (write(rings[1 % count][1], &token, sizeof(token)) != sizeof(token)) bad = 1;
			}
			FILE *log = fopen(argv[2], "a");
			fprintf(log, bad ? "CORRUPT pid=%d\n" : "OK pid=%d\n", getpid());
			fclose(log);
		}
	}
}
