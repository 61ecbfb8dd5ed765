/* dirtymem MIB PERMILLE LOGFILE
 * A pre-dump workload: MIB mebibytes of anonymous memory whose every page holds a pattern made from its index and
 * its version, and a writer that rewrites pages chosen at random, PERMILLE per mille of them per second (10 = 1 %/s),
 * so that successive checkpoints see a small and changing set of written pages. Each rewrite bumps the page's
 * version (kept in an array of its own) and rewrites the whole page from it, so a page restored from an older image
 * than its version says is caught.
 * SIGUSR1: verify every page (and every area SIGUSR2 mapped), append "OK pages=N writes=W pid=P" or
 *          "CORRUPT page=I version=V pid=P" to LOGFILE.
 * SIGUSR2: map a new 4 MiB area and fill it (memory that appears after a pre-dump, never registered for write
 *          tracking), append "MAPPED pid=P" to LOGFILE.
 * SIGHUP:  exec itself again (a new address space under the same PID), which starts over.
 * Writes its pid to ./ready and appends "STARTED pid=P" to LOGFILE once the memory is filled. */
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
#define WORDS (PAGE / 8)
#define EXTRA_PAGES 1024
#define MAX_EXTRA 16

static volatile sig_atomic_t check_requested, map_requested, exec_requested;
static void on_usr1(int s) { (void)s; check_requested = 1; }
static void on_usr2(int s) { (void)s; map_requested = 1; }
static void on_hup(int s) { (void)s; exec_requested = 1; }

static uint64_t xs(uint64_t *s) { uint64_t x = *s; x ^= x << 13; x ^= x >> 7; x ^= x << 17; return *s = x; }

static uint64_t word(uint64_t page, uint32_t version, uint64_t i)
{
	return (page * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)version * 0xBF58476D1CE4E5B9ull) ^ (i * 0x94D049BB133111EBull) ^ 1;
}

static void fill(uint64_t *at, uint64_t page, uint32_t version)
{
	for (uint64_t i = 0; i < WORDS; i++) at[i] = word(page, version, i);
}

static int verify(const uint64_t *at, uint64_t page, uint32_t version)
{
	for (uint64_t i = 0; i < WORDS; i++)
		if (at[i] != word(page, version, i)) return 0;
	return 1;
}

static void log_line(const char *path, const char *line)
{
	FILE *log = fopen(path, "a");
	fputs(line, log);
	fclose(log);
}

int main(int argc, char **argv)
{
	if (argc < 4) { fprintf(stderr, "usage: %s MIB PERMILLE LOGFILE\n", argv[0]); return 2; }
	uint64_t pages = (uint64_t)atol(argv[1]) << 8;
	double per_tick = (double)pages * atof(argv[2]) / 1000.0 / 100.0; /* 100 ticks a second */
	uint64_t *memory = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint32_t *versions = mmap(NULL, pages * sizeof(uint32_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (memory == MAP_FAILED || versions == MAP_FAILED) { perror("mmap"); return 1; }
	for (uint64_t p = 0; p < pages; p++) {
		versions[p] = 1;
		fill(memory + p * WORDS, p, 1);
	}
	uint64_t *extra[MAX_EXTRA];
	int extras = 0;
	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, on_usr2);
	signal(SIGHUP, on_hup);
	announce_ready(getpid());
	char line[160];
	snprintf(line, sizeof(line), "STARTED pid=%d\n", getpid());
	log_line(argv[3], line);

	uint64_t seed = 0x2545F4914F6CDD1Dull, writes = 0;
	double due = 0;
	for (;;) {
		struct timespec tick = { 0, 10 * 1000 * 1000 };
		nanosleep(&tick, NULL);
		for (due += per_tick; due >= 1; due--) {
			uint64_t p = xs(&seed) % pages;
			fill(memory + p * WORDS, p, ++versions[p]);
			writes++;
		}
		if (exec_requested) {
			execv("/proc/self/exe", argv);
			return 1;
		}
		if (map_requested && extras < MAX_EXTRA) {
			map_requested = 0;
			extra[extras] = mmap(NULL, EXTRA_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			for (uint64_t p = 0; p < EXTRA_PAGES; p++) fill(extra[extras] + p * WORDS, p, 1000 + extras);
			extras++;
			snprintf(line, sizeof(line), "MAPPED pid=%d\n", getpid());
			log_line(argv[3], line);
		}
		if (check_requested) {
			check_requested = 0;
			snprintf(line, sizeof(line), "OK pages=%llu writes=%llu pid=%d\n", (unsigned long long)pages, (unsigned long long)writes, getpid());
			for (uint64_t p = 0; p < pages; p++) {
				if (!verify(memory + p * WORDS, p, versions[p])) {
					snprintf(line, sizeof(line), "CORRUPT page=%llu version=%u pid=%d\n", (unsigned long long)p, versions[p], getpid());
					break;
				}
			}
			for (int e = 0; e < extras; e++)
				for (uint64_t p = 0; p < EXTRA_PAGES; p++)
					if (!verify(extra[e] + p * WORDS, p, 1000 + e)) {
						snprintf(line, sizeof(line), "CORRUPT extra=%d page=%llu pid=%d\n", e, (unsigned long long)p, getpid());
						e = extras;
						break;
					}
			log_line(argv[3], line);
		}
	}
}
