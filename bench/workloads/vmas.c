/* vmas COUNT LOGFILE
 * A benchmark workload with COUNT small memory areas: single pages with alternating protections, so that the
 * kernel cannot merge neighbours, each holding its own pattern. On SIGUSR1 it verifies every area and appends
 * "OK pid=P" or "CORRUPT area=N pid=P" to LOGFILE. Writes ./ready with its pid when set up. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile sig_atomic_t check_requested;
static void on_usr1(int s) { (void)s; check_requested = 1; }

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: %s COUNT LOGFILE\n", argv[0]); return 2; }
	int count = atoi(argv[1]);
	char **areas = calloc(count, sizeof(*areas));
	/* One reservation, then per-page protections: neighbours differ, so each page is its own VMA. */
	char *base = mmap(NULL, (size_t)count * 2 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) { perror("mmap"); return 1; }
	for (int i = 0; i < count; i++) {
		areas[i] = base + (size_t)i * 2 * 4096;
		mprotect(areas[i], 4096, PROT_READ | PROT_WRITE);
		for (int j = 0; j < 4096; j += 64) areas[i][j] = (char)(i + j);
		if (i % 2) mprotect(areas[i], 4096, PROT_READ);
	}
	signal(SIGUSR1, on_usr1);
	FILE *ready = fopen("ready.tmp", "w");
	fprintf(ready, "%d\n", getpid());
	fclose(ready);
	rename("ready.tmp", "ready");
	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		int bad = -1;
		for (int i = 0; i < count && bad < 0; i++)
			for (int j = 0; j < 4096; j += 64) if (areas[i][j] != (char)(i + j)) { bad = i; break; }
		FILE *log = fopen(argv[2], "a");
		if (bad < 0) fprintf(log, "OK pid=%d\n", getpid());
		else fprintf(log, "CORRUPT area=%d pid=%d\n", bad, getpid());
		fclose(log);
	}
}
