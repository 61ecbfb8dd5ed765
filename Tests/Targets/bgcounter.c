/* bgcounter MIB WORKDIR
 * A test target for background checkpoints (Checkpoint-Process -LeaveRunning -Background): it writes its memory
 * without pause, so that any copy taken while it runs is inconsistent unless every page is saved as it was at one
 * instant.
 *
 * It sweeps MIB MiB of private anonymous memory without end, page after page; sweep number g stamps the first and
 * the last word of each page with g, after checking that both hold g - 1 (the previous sweep's stamp; 0 before the
 * first). A process's own memory always passes that check. A restored process goes on from the instruction it was
 * at, with the registers of the checkpoint's freeze: it passes the checks only if every page of its image is the
 * page at that same instant. A page copied later (a sweep further) fails the check when the sweep reaches it, a page
 * copied earlier fails it one sweep later; a torn page (first and last word differ) fails at once.
 * At each new sweep it also stamps g into a MAP_SHARED anonymous page and into a written page of a private file
 * mapping (areas a background checkpoint copies while frozen), and checks that both held g - 1.
 *
 * On SIGUSR1 it appends one line to WORKDIR/bgcounter.log: "OK sweeps=G stamps=N pid=P" (N: pages stamped so far,
 * its throughput counter) or "BAD what pid=P" for the first failed check (it carries on sweeping).
 * WORKDIR/ready holds the pid once set-up is done. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "selfcheck.h"

#define PAGE 4096
#define WORDS (PAGE / 8)

static volatile sig_atomic_t report_requested;
static char bad[256];

static void on_usr1(int s) { (void)s; report_requested = 1; }

static void report(uint64_t g, uint64_t stamps) {
	FILE *log = fopen("bgcounter.log", "a");
	if (!log) return;
	if (bad[0]) fprintf(log, "BAD %s pid=%d\n", bad, getpid());
	else fprintf(log, "OK sweeps=%llu stamps=%llu pid=%d\n", (unsigned long long)g, (unsigned long long)stamps, getpid());
	fclose(log);
}

int main(int argc, char **argv) {
	if (argc != 3) { fprintf(stderr, "usage: bgcounter MIB WORKDIR\n"); return 2; }
	size_t pages = (size_t)strtoul(argv[1], NULL, 10) << 8;
	if (chdir(argv[2]) != 0) die("chdir");

	uint64_t *memory = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t *shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int fd = open("bgcounter.data", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 2 * PAGE) != 0) die("bgcounter.data");
	uint64_t *file = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (memory == MAP_FAILED || shared == MAP_FAILED || file == MAP_FAILED) die("mmap");
	close(fd);
	/* Every page present, stamped 0: the first sweep finds what it expects. */
	memset(memory, 0, pages * PAGE);
	shared[0] = 0;
	file[0] = 0;

	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) != 0) die("sigaction");

	announce_ready(getpid());

	uint64_t stamps = 0;
	for (uint64_t g = 1;; g++) {
		if (!bad[0] && (shared[0] != g - 1 || file[0] != g - 1))
			snprintf(bad, sizeof bad, "sweep %llu: shared page holds %llu, private file page %llu", (unsigned long long)g,
				 (unsigned long long)shared[0], (unsigned long long)file[0]);
		shared[0] = g;
		file[0] = g;
		for (size_t i = 0; i < pages; i++) {
			volatile uint64_t *page = memory + i * WORDS;
			uint64_t first = page[0], last = page[WORDS - 1];
			if (!bad[0] && (first != g - 1 || last != g - 1))
				snprintf(bad, sizeof bad, "sweep %llu: page %zu holds %llu/%llu", (unsigned long long)g, i,
					 (unsigned long long)first, (unsigned long long)last);
			page[0] = g;
			page[WORDS - 1] = g;
			stamps++;
			if (report_requested) {
				report_requested = 0;
				report(g, stamps);
			}
		}
	}
}
