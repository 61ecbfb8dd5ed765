/* bgflags AREAS WORKDIR
 * A test target for background checkpoints (Checkpoint-Process -LeaveRunning -Background), which take the VmFlags of
 * a process's areas from smaps read while it runs ahead of the freeze and confirm them once it runs again: this
 * process changes those flags all the time, without changing its layout.
 *
 * It maps AREAS areas of one page each, a hole after each (so that no two areas merge into one), writes its index
 * into each, and then, one area after the other, every millisecond, sets MADV_DONTFORK over a whole area (VmFlags
 * "dc"): the layout stays the same, the flags of one more area change. A checkpoint that runs meanwhile sees one
 * area's flags differ between a read ahead of its freeze and one after it.
 *
 * On SIGUSR1 it appends one line to WORKDIR/bgflags.log: "OK changed=N pid=P" (N: areas changed so far) once every
 * area holds its index, or "BAD area I holds V pid=P". WORKDIR/ready holds the pid once set-up is done. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

#define PAGE 4096

static volatile sig_atomic_t report_requested;

static void on_usr1(int s) { (void)s; report_requested = 1; }

static void report(volatile uint64_t *const *areas, size_t count, size_t changed) {
	FILE *log = fopen("bgflags.log", "a");
	if (!log) return;
	for (size_t i = 0; i < count; i++) {
		if (areas[i][0] != i) {
			fprintf(log, "BAD area %zu holds %llu pid=%d\n", i, (unsigned long long)areas[i][0], getpid());
			fclose(log);
			return;
		}
	}
	fprintf(log, "OK changed=%zu pid=%d\n", changed, getpid());
	fclose(log);
}

int main(int argc, char **argv) {
	if (argc != 3) { fprintf(stderr, "usage: bgflags AREAS WORKDIR\n"); return 2; }
	size_t count = (size_t)strtoul(argv[1], NULL, 10);
	if (chdir(argv[2]) != 0) die("chdir");

	char *span = mmap(NULL, 2 * count * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	volatile uint64_t **areas = calloc(count, sizeof *areas);
	if (span == MAP_FAILED || !areas) die("mmap");
	for (size_t i = 0; i < count; i++) {
		if (munmap(span + (2 * i + 1) * PAGE, PAGE) != 0) die("munmap");
		areas[i] = (volatile uint64_t *)(span + 2 * i * PAGE);
		areas[i][0] = i;
	}

	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) != 0) die("sigaction");

	announce_ready(getpid());

	size_t changed = 0;
	struct timespec millisecond = { 0, 1000000 };
	for (;;) {
		nanosleep(&millisecond, NULL);
		if (changed < count) {
			if (madvise((void *)areas[changed], PAGE, MADV_DONTFORK) != 0) die("madvise");
			changed++;
		}
		if (report_requested) {
			report_requested = 0;
			report((volatile uint64_t *const *)areas, count, changed);
		}
	}
}
