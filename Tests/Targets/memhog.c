/* memhog MIB LOGFILE
 * A benchmark workload: MIB mebibytes of anonymous memory filled with an xorshift stream (no zero pages), then
 * idle. On SIGUSR1 it verifies every byte and appends "OK pid=P" or "CORRUPT offset=N pid=P" to LOGFILE.
 * Writes its pid to ./ready when the memory is filled. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "selfcheck.h"

static volatile sig_atomic_t check_requested;
static void on_usr1(int s) { (void)s; check_requested = 1; }
static uint64_t xs(uint64_t *s) { uint64_t x = *s; x ^= x << 13; x ^= x >> 7; x ^= x << 17; return *s = x; }

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: %s MIB LOGFILE\n", argv[0]); return 2; }
	size_t words = (size_t)atol(argv[1]) << 17;
	uint64_t *memory = mmap(NULL, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (memory == MAP_FAILED) { perror("mmap"); return 1; }
	uint64_t s = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < words; i++) memory[i] = xs(&s);
	signal(SIGUSR1, on_usr1);
	announce_ready(getpid());
	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		s = 0x9E3779B97F4A7C15ull;
		size_t bad = (size_t)-1;
		for (size_t i = 0; i < words; i++) if (memory[i] != xs(&s)) { bad = i * 8; break; }
		FILE *log = fopen(argv[2], "a");
		if (bad == (size_t)-1) fprintf(log, "OK pid=%d\n", getpid());
		else fprintf(log, "CORRUPT offset=%zu pid=%d\n", bad, getpid());
		fclose(log);
	}
}
