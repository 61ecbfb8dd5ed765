/* hugepages WORKDIR
 * A test target with 16 MiB of private anonymous memory advised MADV_HUGEPAGE before it is filled (2 MiB aligned,
 * so that transparent huge pages back it where the kernel has them to give), each byte from a pattern.
 * WORKDIR/area holds "START-END" of that area, for the test to read its AnonHugePages out of smaps; WORKDIR/ready
 * holds the pid once set up. On SIGUSR1 it checks every byte and appends "OK" or "CORRUPT offset=N" to
 * WORKDIR/hugepages.log. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#include "selfcheck.h"

#define HUGE (2ul << 20)
#define SIZE (16ul << 20)

static volatile sig_atomic_t check_requested;
static void on_usr1(int s) { (void)s; check_requested = 1; }
static char pattern(size_t i) { return (char)(i * 131 + (i >> 12) + 7); }

int main(int argc, char **argv)
{
	if (argc < 2 || chdir(argv[1])) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	/* Reserve one huge page more than needed and start at the first 2 MiB boundary in it. */
	char *reserved = mmap(NULL, SIZE + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (reserved == MAP_FAILED) die("mmap");
	char *area = (char *)(((uintptr_t)reserved + HUGE - 1) & ~(HUGE - 1));
	if (madvise(area, SIZE, MADV_HUGEPAGE)) die("madvise");
	for (size_t i = 0; i < SIZE; i++) area[i] = pattern(i);
	FILE *f = fopen("area", "w");
	if (!f) die("area");
	fprintf(f, "%lx-%lx\n", (unsigned long)area, (unsigned long)(area + SIZE));
	fclose(f);
	signal(SIGUSR1, on_usr1);
	announce_ready(getpid());
	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		size_t bad = SIZE;
		for (size_t i = 0; i < SIZE && bad == SIZE; i++) if (area[i] != pattern(i)) bad = i;
		FILE *log = fopen("hugepages.log", "a");
		if (!log) die("log");
		if (bad == SIZE) fprintf(log, "OK\n"); else fprintf(log, "CORRUPT offset=%zu\n", bad);
		fclose(log);
	}
}
