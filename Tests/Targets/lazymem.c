/* lazymem MIB LOGFILE
 * A target for lazy restores: MIB mebibytes of anonymous memory in which every 64-bit word holds a hash of its own
 * index (so any part can be checked on its own, wherever it was moved), then idle, touching none of it. Writes its
 * pid to ./ready. Each signal appends one line to LOGFILE:
 *   SIGUSR2  "ALIVE n pid=P": answered without touching the big memory, so it shows the process runs.
 *   SIGUSR1  "OK pid=P" or "CORRUPT ...": checks every word (after SIGHUP, the layout SIGHUP left).
 *   SIGHUP   "CHURN OK pid=P" or "CHURN CORRUPT ...": changes the layout while pages may still be arriving: moves
 *            the second quarter elsewhere with mremap, discards the seventh eighth (MADV_DONTNEED: it must read as
 *            zeros), unmaps the last eighth, forks a child that checks everything and exits 0 or 1, then checks
 *            everything itself. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "selfcheck.h"

static volatile sig_atomic_t requested;
static void on_signal(int s) { requested = s; }

static uint64_t expected(size_t index)
{
	uint64_t z = index + 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t *memory, *moved;
static size_t words;
static int churned;

/* Checks words [from, to) of the original numbering, found at base[0..]; returns the first bad index or -1. */
static long check(const uint64_t *base, size_t from, size_t to, int zeros)
{
	for (size_t i = from; i < to; i++)
		if (base[i - from] != (zeros ? 0 : expected(i)))
			return (long)i;
	return -1;
}

/* The whole memory as it is now: returns a description of the first problem, or NULL. */
static const char *verify(long *where)
{
	if (!churned) {
		*where = check(memory, 0, words, 0);
		return *where < 0 ? NULL : "word";
	}
	size_t q = words / 4, e = words / 8;
	if ((*where = check(memory, 0, q, 0)) >= 0) return "first quarter";
	if ((*where = check(moved, q, 2 * q, 0)) >= 0) return "moved quarter";
	if ((*where = check(memory + 2 * q, 2 * q, 6 * e, 0)) >= 0) return "kept part";
	if ((*where = check(memory + 6 * e, 6 * e, 7 * e, 1)) >= 0) return "discarded part (not zero)";
	return NULL;
}

static void churn(FILE *log)
{
	size_t q = words / 4, e = words / 8;
	void *target = mmap(NULL, q * 8, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	moved = mremap(memory + q, q * 8, q * 8, MREMAP_MAYMOVE | MREMAP_FIXED, target);
	madvise(memory + 6 * e, e * 8, MADV_DONTNEED);
	munmap(memory + 7 * e, e * 8);
	churned = 1;
	pid_t child = fork();
	if (child == 0) {
		long where;
		_exit(verify(&where) ? 1 : 0);
	}
	int status = 0;
	waitpid(child, &status, 0);
	long where;
	const char *problem = verify(&where);
	if (moved == MAP_FAILED || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(log, "CHURN CORRUPT child=%d moved=%d pid=%d\n", status, moved == MAP_FAILED, getpid());
	else if (problem)
		fprintf(log, "CHURN CORRUPT %s word=%ld pid=%d\n", problem, where, getpid());
	else
		fprintf(log, "CHURN OK pid=%d\n", getpid());
}

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: %s MIB LOGFILE\n", argv[0]); return 2; }
	words = (size_t)atol(argv[1]) << 17;
	memory = mmap(NULL, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (memory == MAP_FAILED) { perror("mmap"); return 1; }
	for (size_t i = 0; i < words; i++) memory[i] = expected(i);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	announce_ready(getpid());
	for (unsigned alive = 0;;) {
		pause();
		int s = requested;
		requested = 0;
		if (!s) continue;
		FILE *log = fopen(argv[2], "a");
		if (s == SIGUSR2) {
			fprintf(log, "ALIVE %u pid=%d\n", ++alive, getpid());
		} else if (s == SIGUSR1) {
			long where;
			const char *problem = verify(&where);
			if (problem) fprintf(log, "CORRUPT %s word=%ld pid=%d\n", problem, where, getpid());
			else fprintf(log, "OK pid=%d\n", getpid());
		} else if (s == SIGHUP) {
			churn(log);
		}
		fclose(log);
	}
}
