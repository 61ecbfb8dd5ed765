/* demo LOGFILE
 * The program the README's demo checkpoints and restores: it counts, keeps a little state in memory, and
 * appends "tick N (pid P, state ok|CORRUPT)" to LOGFILE every half second. Writes its pid to ./ready. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s LOGFILE\n", argv[0]); return 2; }
	FILE *log = fopen(argv[1], "a");
	if (!log) { perror("log"); return 1; }
	setvbuf(log, NULL, _IOLBF, 0);
	size_t size = 8 << 20;
	unsigned *memory = malloc(size);
	for (size_t i = 0; i < size / sizeof(unsigned); i++) memory[i] = (unsigned)(i * 2654435761u);
	FILE *ready = fopen("ready", "w");
	fprintf(ready, "%d\n", getpid());
	fclose(ready);
	struct timespec half = { 0, 500 * 1000 * 1000 };
	for (long tick = 1;; tick++) {
		int ok = 1;
		for (size_t i = 0; i < size / sizeof(unsigned); i += 1024) ok &= memory[i] == (unsigned)(i * 2654435761u);
		fprintf(log, "tick %ld (pid %d, state %s)\n", tick, getpid(), ok ? "ok" : "CORRUPT");
		nanosleep(&half, NULL);
	}
}
