/* writepaths DIR MIB [ROUNDS]
 * What each way of getting a process's memory into a pages file costs on this machine, per stage, in wall and CPU
 * seconds per GiB (issue 15: is one copy, made by the kernel inside the target, cheaper than the dump's two?).
 * A child ("the target") holds MIB of anonymous memory filled with an xorshift stream (no zero pages); the parent is
 * "the engine". Every stage moves 8 MiB per call, as the dump does, into a new file under DIR (removed after). Rows:
 *   two copies: readv        process_vm_readv of the target's memory into an 8 MiB buffer (the dump's reader)
 *   two copies: write        write(2) of that buffer to the pages file (the dump's page writer)
 *   two copies: hash         a read of every byte of the buffer (the page hasher's reads, without its arithmetic)
 *   one copy: pwritev        the target writes its own memory to the file (an injected pwritev, minus the injection)
 *   one copy: read back      the engine reads the written file back with pread into its buffer (for the digest)
 *   one copy: mmap back      the engine maps the written file (MAP_POPULATE) and reads every byte
 *   vmsplice+splice          the target gifts its memory to a pipe (1 MiB, the size allowed without
 *                            CAP_SYS_RESOURCE) and splices it into the file
 *   fallocate, then write     the file allocated first, then written: how much of a write is allocation
 *   restore: 4 KiB            MADV_POPULATE_WRITE of fresh memory (allocate), then preadv of the file into it
 *   restore: huge             one byte touched per 2 MiB and MADV_COLLAPSE (allocate), then preadv
 * The target's rows are timed inside the target (its own CPU time); the engine's inside the engine. Each round
 * prints every row; ROUNDS defaults to 3. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define BATCH (8L << 20)
#define HUGE (2L << 20)

static size_t bytes;
static char path[4096];

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static double cpu(void)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static void die(const char *what) { perror(what); exit(1); }

/* A stage's clock: wall and CPU seconds, reported per GiB. */
struct clock { double wall, cpu; };
static struct clock start(void) { return (struct clock){ now(), cpu() }; }
static void report(const char *row, struct clock c)
{
	double gib = (double)bytes / (1L << 30);
	printf("%-24s %7.3f s/GiB wall %7.3f CPU-s/GiB\n", row, (now() - c.wall) / gib, (cpu() - c.cpu) / gib);
	fflush(stdout);
}

static int create(void)
{
	unlink(path);
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) die(path);
	return fd;
}

static uint64_t sum(const char *p, size_t n)
{
	uint64_t s = 0;
	for (size_t i = 0; i < n; i += 8) s += *(const uint64_t *)(p + i);
	return s;
}

/* The target: fills its memory (mapped by the parent before the fork, so both know its address), then runs one
 * command per byte of its pipe ('p' pwritev, 's' vmsplice, 'q' quit), answering one byte when done. */
static void target(char *m, int commands, int answers)
{
	uint64_t *memory = (uint64_t *)m, s = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < bytes / 8; i++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; memory[i] = s; }
	char command;
	if (write(answers, "r", 1) != 1) die("ready");
	while (read(commands, &command, 1) == 1 && command != 'q') {
		int fd = create();
		struct clock c = start();
		if (command == 'p') {
			for (size_t o = 0; o < bytes; o += BATCH) {
				struct iovec v = { m + o, BATCH };
				if (pwritev(fd, &v, 1, (off_t)o) != BATCH) die("pwritev");
			}
			report("one copy: pwritev", c);
		} else {
			int pipes[2];
			if (pipe(pipes)) die("pipe");
			long size = fcntl(pipes[1], F_SETPIPE_SZ, 1 << 20);
			if (size <= 0) die("F_SETPIPE_SZ");
			for (size_t o = 0; o < bytes;) {
				struct iovec v = { m + o, (size_t)size < bytes - o ? (size_t)size : bytes - o };
				ssize_t n = vmsplice(pipes[1], &v, 1, SPLICE_F_GIFT);
				if (n <= 0) die("vmsplice");
				for (ssize_t moved = 0; moved < n;) {
					ssize_t k = splice(pipes[0], NULL, fd, NULL, (size_t)(n - moved), SPLICE_F_MOVE);
					if (k <= 0) die("splice");
					moved += k;
				}
				o += (size_t)n;
			}
			close(pipes[0]);
			close(pipes[1]);
			report("vmsplice+splice", c);
		}
		close(fd);
		if (write(answers, "d", 1) != 1) die("answer");
	}
	exit(0);
}

static void ask(int commands, int answers, char command)
{
	char answer;
	if (write(commands, &command, 1) != 1 || read(answers, &answer, 1) != 1) die("target");
}

/* A stage of the two-copy pipeline, timed call by call and summed. */
struct stage { double wall, cpu; };
static void lap(struct stage *stage, struct clock c) { stage->wall += now() - c.wall; stage->cpu += cpu() - c.cpu; }
static void report_stage(const char *row, struct stage stage)
{
	double gib = (double)bytes / (1L << 30);
	printf("%-24s %7.3f s/GiB wall %7.3f CPU-s/GiB\n", row, stage.wall / gib, stage.cpu / gib);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: %s DIR MIB [ROUNDS]\n", argv[0]); return 2; }
	bytes = (size_t)atol(argv[2]) << 20;
	int rounds = argc > 3 ? atoi(argv[3]) : 3;
	if (bytes == 0 || bytes % BATCH) { fprintf(stderr, "MIB must be a multiple of 8\n"); return 2; }
	snprintf(path, sizeof path, "%s/writepaths-%d.tmp", argv[1], getpid());
	char *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (memory == MAP_FAILED) die("mmap");
	int down[2], up[2];
	if (pipe(down) || pipe(up)) die("pipe");
	pid_t child = fork();
	if (child < 0) die("fork");
	if (child == 0) target(memory, down[0], up[1]);
	close(up[1]); /* a target that dies ends the engine's reads */
	char ready;
	if (read(up[0], &ready, 1) != 1) die("target start");
	char *buffer = aligned_alloc(4096, BATCH);
	memset(buffer, 1, BATCH);
	uint64_t seen = 0;
	for (int round = 1; round <= rounds; round++) {
		printf("round %d\n", round);
		fflush(stdout);
		/* The dump as it is: two copies, and every byte read again for the digest. */
		int fd = create();
		struct stage readv = { 0 }, writes = { 0 }, hash = { 0 };
		for (size_t o = 0; o < bytes; o += BATCH) {
			struct iovec local = { buffer, BATCH }, remote = { memory + o, BATCH };
			struct clock c = start();
			if (process_vm_readv(child, &local, 1, &remote, 1, 0) != BATCH) die("process_vm_readv");
			lap(&readv, c);
			c = start();
			if (write(fd, buffer, BATCH) != BATCH) die("write");
			lap(&writes, c);
			c = start();
			seen += sum(buffer, BATCH);
			lap(&hash, c);
		}
		close(fd);
		report_stage("two copies: readv", readv);
		report_stage("two copies: write", writes);
		report_stage("two copies: hash", hash);
		/* One copy, by the target; the engine then reads the file back for the digest. */
		ask(down[1], up[0], 'p');
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) die(path);
		struct clock c = start();
		for (size_t o = 0; o < bytes; o += BATCH) {
			if (pread(fd, buffer, BATCH, (off_t)o) != BATCH) die("pread");
			seen += sum(buffer, BATCH);
		}
		report("one copy: read back", c);
		c = start();
		char *mapped = mmap(NULL, bytes, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
		if (mapped == MAP_FAILED) die("mmap of the file");
		seen += sum(mapped, bytes);
		munmap(mapped, bytes);
		report("one copy: mmap back", c);
		close(fd);
		ask(down[1], up[0], 's');
		/* How much of a write is the file's allocation. */
		fd = create();
		c = start();
		if (fallocate(fd, 0, 0, (off_t)bytes)) die("fallocate");
		report("fallocate", c);
		c = start();
		for (size_t o = 0; o < bytes; o += BATCH)
			if (write(fd, buffer, BATCH) != BATCH) die("write");
		report("write after fallocate", c);
		/* The restore's copy into 4 KiB pages and into huge pages. */
		for (int huge = 0; huge <= 1; huge++) {
			char *raw = mmap(NULL, bytes + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (raw == MAP_FAILED) die("mmap");
			char *area = (char *)(((uintptr_t)raw + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
			c = start();
			if (huge) {
				for (size_t o = 0; o < bytes; o += HUGE) area[o] = 0;
				if (madvise(area, bytes, MADV_COLLAPSE)) die("MADV_COLLAPSE");
			} else if (madvise(area, bytes, MADV_POPULATE_WRITE)) {
				die("MADV_POPULATE_WRITE");
			}
			report(huge ? "restore: huge: allocate" : "restore: 4 KiB: allocate", c);
			c = start();
			for (size_t o = 0; o < bytes; o += BATCH) {
				struct iovec v = { area + o, BATCH };
				if (preadv(fd, &v, 1, (off_t)o) != BATCH) die("preadv");
			}
			report(huge ? "restore: huge: preadv" : "restore: 4 KiB: preadv", c);
			munmap(raw, bytes + HUGE);
		}
		close(fd);
		unlink(path);
	}
	if (write(down[1], "q", 1) != 1) die("target");
	waitpid(child, NULL, 0);
	unlink(path);
	return seen == 42; /* keeps the reads */
}
