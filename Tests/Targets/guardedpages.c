/* guardedpages WORKDIR
 * A test target whose memory is one reservation protected page by page, as allocators and runtimes make them: 600
 * pages mapped PROT_NONE, then page i made read-write with its own pattern (i % 4 == 0), read-only with its pattern
 * (i % 4 == 1), left a guard that never held data (i % 4 == 2), or written and then made PROT_NONE again
 * (i % 4 == 3: a guard with saved contents). The kernel keeps each page an area of its own only for its protection.
 * WORKDIR/ready holds the pid once set-up is done. On SIGUSR1 it checks every page (a guard with contents is made
 * readable for the check, then PROT_NONE again) and appends "OK pid=P" or "FAIL page=N pid=P" to
 * WORKDIR/guardedpages.log. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "selfcheck.h"

#define PAGES 600
#define PAGE 4096

static volatile sig_atomic_t check_requested;
static void on_usr1(int s) { (void)s; check_requested = 1; }

static char pattern(int page, int offset) { return (char)(page * 31 + offset * 7 + 1); }

static int page_holds_pattern(const char *p, int page)
{
	for (int j = 0; j < PAGE; j += 64)
		if (p[j] != pattern(page, j)) return 0;
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[1])) die("chdir");
	char *base = mmap(NULL, (size_t)PAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) die("mmap");
	for (int i = 0; i < PAGES; i++) {
		char *p = base + (size_t)i * PAGE;
		if (i % 4 == 2) continue;
		mprotect(p, PAGE, PROT_READ | PROT_WRITE);
		for (int j = 0; j < PAGE; j += 64) p[j] = pattern(i, j);
		if (i % 4 == 1) mprotect(p, PAGE, PROT_READ);
		if (i % 4 == 3) mprotect(p, PAGE, PROT_NONE);
	}
	signal(SIGUSR1, on_usr1);
	announce_ready(getpid());
	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		int bad = -1;
		for (int i = 0; i < PAGES && bad < 0; i++) {
			char *p = base + (size_t)i * PAGE;
			if (i % 4 == 2) continue;
			if (i % 4 == 3) mprotect(p, PAGE, PROT_READ);
			if (!page_holds_pattern(p, i)) bad = i;
			if (i % 4 == 3) mprotect(p, PAGE, PROT_NONE);
		}
		FILE *log = fopen("guardedpages.log", "a");
		if (bad < 0) fprintf(log, "OK pid=%d\n", getpid());
		else fprintf(log, "FAIL page=%d pid=%d\n", bad, getpid());
		fclose(log);
	}
}
