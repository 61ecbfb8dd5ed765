/* limits MODE ARGS
 * The machine's own limits, measured next to each benchmark (the machine is shared and noisy):
 *   limits memcpy MIB       best memcpy bandwidth between two touched buffers of MIB, in GiB/s
 *   limits write PATH MIB   sequential write of MIB to a new file at PATH (1 MiB blocks, then fsync), in GB/s
 *   limits read PATH MIB    sequential read of that file after dropping it from the page cache, in GB/s
 *   limits touch MIB        first touch of MIB of fresh anonymous memory, in seconds per GiB
 * Prints one number. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static char *touched(size_t bytes)
{
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED) { perror("mmap"); exit(1); }
	memset(p, 0x5a, bytes);
	return p;
}

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: %s memcpy|write|read|touch ...\n", argv[0]); return 2; }
	const char *mode = argv[1];
	if (!strcmp(mode, "memcpy")) {
		size_t bytes = (size_t)atol(argv[2]) << 20;
		char *a = touched(bytes), *b = touched(bytes);
		double best = 1e9;
		for (int i = 0; i < 3; i++) { double t = now(); memcpy(b, a, bytes); t = now() - t; if (t < best) best = t; }
		printf("%.3f\n", bytes / best / (1 << 30));
	} else if (!strcmp(mode, "write") || !strcmp(mode, "read")) {
		if (argc < 4) return 2;
		size_t bytes = (size_t)atol(argv[3]) << 20, block = 1 << 20;
		char *buffer = touched(block);
		double t = now();
		if (!strcmp(mode, "write")) {
			int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (fd < 0) { perror("open"); return 1; }
			for (size_t done = 0; done < bytes; done += block) if (write(fd, buffer, block) != (ssize_t)block) { perror("write"); return 1; }
			fsync(fd);
			t = now() - t;
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			close(fd);
		} else {
			int fd = open(argv[2], O_RDONLY);
			if (fd < 0) { perror("open"); return 1; }
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			t = now();
			for (size_t done = 0; done < bytes; done += block) if (read(fd, buffer, block) != (ssize_t)block) { perror("read"); return 1; }
			t = now() - t;
			close(fd);
		}
		printf("%.3f\n", bytes / t / 1e9);
	} else if (!strcmp(mode, "touch")) {
		size_t bytes = (size_t)atol(argv[2]) << 20;
		char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		double t = now();
		for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
		t = now() - t;
		printf("%.3f\n", t / (bytes / (double)(1 << 30)));
	} else {
		return 2;
	}
	return 0;
}
