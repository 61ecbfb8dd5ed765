/* madvise WORKDIR [merge-any]
 * A test target whose memory areas carry every per-area setting smaps' VmFlags show that a program can make:
 *   sr  MADV_SEQUENTIAL          rr  MADV_RANDOM              dc  MADV_DONTFORK
 *   dd  MADV_DONTDUMP            hg  MADV_HUGEPAGE            nh  MADV_NOHUGEPAGE
 *   mg  MADV_MERGEABLE           wf  MADV_WIPEONFORK          lo  mlock
 *   lo lf  mlock2(MLOCK_ONFAULT) nr  MAP_NORESERVE            sl  mseal
 *   dp  MAP_DROPPABLE            dc wf dd  several at once    (an area split by advice on its middle part)
 *   sh mw  a shared mapping, read-only, of a file opened O_RDWR (it may be made writable again with mprotect)
 *   ms  a shared mapping of a file opened O_RDONLY (it may not)
 *   (none) MADV_UNMERGEABLE, which only shows in a process that merges every area
 * With merge-any the process first sets prctl(PR_SET_MEMORY_MERGE), which makes every area it maps mergeable
 * ("mg") but the one advised MADV_UNMERGEABLE; the check then also asks that the setting still holds and that an
 * area mapped afresh is mergeable.
 * Each area is filled with its own pattern. WORKDIR/ready holds the pid once set up; WORKDIR/areas lists
 * "START-END NAME" per area, for the test to pick them out of smaps.
 * On SIGUSR1 it checks itself and appends one line "OK areas=N" or "CORRUPT what" to WORKDIR/madvise.log:
 * the VmFlags of each area are those it read when set up, the contents are intact, and the settings still act:
 * a forked child lacks the MADV_DONTFORK areas, sees zeros in the MADV_WIPEONFORK ones and the rest intact;
 * the sealed area refuses munmap and mprotect (EPERM); the shared read-only mapping of the O_RDWR file can be
 * made writable and writes reach the file, that of the O_RDONLY file cannot (EACCES); VmLck counts the
 * locked pages. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif
#ifndef __NR_mseal
#define __NR_mseal 462
#endif

#define PAGE 4096ul
#define AREA (16 * PAGE)
#define SLOT (4ul << 20) /* 2 MiB aligned areas, holes between them so that none merges with the next */

enum { A_SEQ, A_RAND, A_DONTFORK, A_DONTDUMP, A_HUGE, A_NOHUGE, A_MERGE, A_WIPE, A_LOCK, A_ONFAULT, A_NORESERVE,
       A_SEAL, A_DROP, A_MANY, A_SPLIT, A_SHARED_RW, A_SHARED_RO, A_UNMERGE, COUNT };
static const char *names[COUNT] = { "sequential", "random", "dontfork", "dontdump", "hugepage", "nohugepage",
	"mergeable", "wipeonfork", "locked", "lockonfault", "noreserve", "sealed", "droppable", "several",
	"split", "shared-rw-file", "shared-ro-file", "unmergeable" };

static char *areas[COUNT];
static char flags_at_start[COUNT][3][256]; /* the split area is three areas: before, advised, after */
static volatile sig_atomic_t check_requested;
static char workdir[4096];
static int merge_any;

static void on_usr1(int s) { (void)s; check_requested = 1; }

static void fill(char *p, size_t size, int seed) { for (size_t i = 0; i < size; i++) p[i] = (char)(i * 31 + seed); }
static int intact(const char *p, size_t size, int seed) { for (size_t i = 0; i < size; i++) if (p[i] != (char)(i * 31 + seed)) return 0; return 1; }
static int zeros(const char *p, size_t size) { for (size_t i = 0; i < size; i++) if (p[i]) return 0; return 1; }

/* The VmFlags line of the area that starts at ADDR in /proc/self/smaps. */
static int vmflags_of(const void *addr, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f) return -1;
	char line[256];
	int found = 0;
	*out = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 && strchr(line, '-') < strchr(line, ' '))
			found = start == (unsigned long)addr;
		else if (found && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(out, size, "%s", line + 8);
			out[strcspn(out, "\n")] = 0;
			break;
		}
	}
	fclose(f);
	return *out ? 0 : -1;
}

static long status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long value = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0) value = atol(line + strlen(key) + 1);
	if (f) fclose(f);
	return value;
}

static char *map_anon(char *at, int type_and_flags)
{
	char *p = mmap(at, AREA, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | type_and_flags, -1, 0);
	if (p == MAP_FAILED) { perror("mmap"); exit(1); }
	return p;
}

static void advise(char *p, size_t size, int advice)
{
	if (madvise(p, size, advice)) { fprintf(stderr, "madvise %d: %s\n", advice, strerror(errno)); exit(1); }
}

/* The three pieces of an area: the whole of it, or for the split area the parts before, inside and after the advice. */
static char *piece(int i, int part)
{
	if (i != A_SPLIT) return part == 0 ? areas[i] : NULL;
	return areas[i] + part * 4 * PAGE;
}

static const char *check_flags(void)
{
	static char what[512];
	for (int i = 0; i < COUNT; i++)
		for (int part = 0; part < 3; part++) {
			char *p = piece(i, part);
			char now[256];
			if (!p) continue;
			if (vmflags_of(p, now, sizeof(now))) { snprintf(what, sizeof(what), "%s-missing", names[i]); return what; }
			if (strcmp(now, flags_at_start[i][part])) {
				snprintf(what, sizeof(what), "%s-vmflags[%s]-now[%s]", names[i], flags_at_start[i][part], now);
				for (char *c = what; *c; c++) if (*c == ' ') *c = '_';
				return what;
			}
		}
	return NULL;
}

static const char *check_contents(void)
{
	for (int i = 0; i < COUNT; i++) {
		size_t size = i == A_SPLIT ? 12 * PAGE : AREA;
		int seed = i == A_SHARED_RO ? A_SHARED_RW : i; /* both map the same file */
		/* A droppable area's pages may be dropped by the kernel under memory pressure: zeros are allowed there. */
		if (!intact(areas[i], size, seed) && !(i == A_DROP && zeros(areas[i], size))) return names[i];
	}
	return NULL;
}

/* In a forked child: DONTFORK areas are gone, WIPEONFORK ones are zero, the others are intact. */
static const char *check_fork(void)
{
	pid_t child = fork();
	if (child < 0) return "fork";
	if (child == 0) {
		unsigned char v;
		if (mincore(areas[A_DONTFORK], PAGE, &v) == 0 || errno != ENOMEM) _exit(1);
		if (mincore(areas[A_MANY], PAGE, &v) == 0 || errno != ENOMEM) _exit(2);
		if (!zeros(areas[A_WIPE], AREA)) _exit(3);
		if (!intact(areas[A_SEQ], AREA, A_SEQ) || !intact(areas[A_LOCK], AREA, A_LOCK)) _exit(4);
		_exit(0);
	}
	int status;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status)) return "fork-child";
	switch (WEXITSTATUS(status)) {
	case 0: return NULL;
	case 1: return "dontfork-inherited";
	case 2: return "several-inherited";
	case 3: return "wipeonfork-not-wiped";
	default: return "fork-contents";
	}
}

static const char *check_behaviour(void)
{
	if (syscall(SYS_munmap, areas[A_SEAL], AREA) == 0 || errno != EPERM) return "seal-munmap";
	if (mprotect(areas[A_SEAL], AREA, PROT_READ) == 0 || errno != EPERM) return "seal-mprotect";
	if (mprotect(areas[A_SHARED_RO], AREA, PROT_READ | PROT_WRITE) == 0 || errno != EACCES) return "shared-ro-writable";
	if (mprotect(areas[A_SHARED_RW], AREA, PROT_READ | PROT_WRITE)) return "shared-rw-not-writable";
	static int round;
	char stamp[24], seen[24];
	snprintf(stamp, sizeof(stamp), "round %d", ++round);
	memcpy(areas[A_SHARED_RW] + PAGE, stamp, sizeof(stamp));
	if (mprotect(areas[A_SHARED_RW], AREA, PROT_READ)) return "shared-rw-protect";
	int fd = open("shared-rw.dat", O_RDONLY);
	if (fd < 0 || pread(fd, seen, sizeof(seen), PAGE) != sizeof(seen) || memcmp(seen, stamp, sizeof(stamp))) return "shared-rw-file";
	close(fd);
	if (merge_any) {
		if (prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) != 1) return "merge-any-lost";
		char *fresh = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), flags[256];
		int mergeable = fresh != MAP_FAILED && vmflags_of(fresh, flags, sizeof(flags)) == 0 && strstr(flags, " mg");
		munmap(fresh, PAGE);
		if (!mergeable) return "merge-any-new-area";
	}
	/* Locked: the 16 pages of mlock, and of the lock-on-fault area the pages touched (all, they were filled). */
	if (status_kib("VmLck:") < (long)(2 * AREA / 1024)) return "vmlck";
	return NULL;
}

static void restore_shared_page(void)
{
	/* check_behaviour stamps page 1 of the shared file: put the pattern back so that contents stay checkable. */
	int fd = open("shared-rw.dat", O_RDWR);
	char page[PAGE];
	for (size_t i = 0; i < PAGE; i++) page[i] = (char)((PAGE + i) * 31 + A_SHARED_RW);
	if (fd < 0 || pwrite(fd, page, PAGE, PAGE) != PAGE) exit(1);
	close(fd);
}

static char *map_file(char *at, const char *name, int open_flags, int seed)
{
	int fd = open(name, open_flags | O_CREAT, 0600);
	if (fd < 0) { perror(name); exit(1); }
	if (open_flags == O_RDWR) {
		char page[AREA];
		fill(page, AREA, seed);
		if (pwrite(fd, page, AREA, 0) != (ssize_t)AREA) exit(1);
	}
	char *p = mmap(at, AREA, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
	if (p == MAP_FAILED) { perror("mmap file"); exit(1); }
	close(fd);
	return p;
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR [merge-any]\n", argv[0]); return 2; }
	snprintf(workdir, sizeof(workdir), "%s", argv[1]);
	if (chdir(workdir)) return 1;
	merge_any = argc > 2 && strcmp(argv[2], "merge-any") == 0;
	if (merge_any && prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0)) { perror("PR_SET_MEMORY_MERGE"); return 1; }

	/* A place with room for every area, each at a 4 MiB boundary with a hole after it. */
	char *base = mmap(NULL, (COUNT + 1) * SLOT, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) return 1;
	munmap(base, (COUNT + 1) * SLOT);
	base = (char *)(((uintptr_t)base + SLOT - 1) & ~(SLOT - 1));
	for (int i = 0; i < COUNT; i++) {
		char *at = base + i * SLOT;
		switch (i) {
		case A_SHARED_RW: areas[i] = map_file(at, "shared-rw.dat", O_RDWR, i); continue;
		case A_SHARED_RO: {
			int fd = open("shared-rw.dat", O_RDONLY);
			areas[i] = mmap(at, AREA, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
			if (areas[i] == MAP_FAILED) return 1;
			close(fd);
			continue;
		}
		case A_NORESERVE: areas[i] = map_anon(at, MAP_PRIVATE | MAP_NORESERVE); break;
		case A_DROP: areas[i] = map_anon(at, MAP_DROPPABLE); break; /* a mapping type of its own, not MAP_PRIVATE */
		default: areas[i] = map_anon(at, MAP_PRIVATE); break;
		}
		fill(areas[i], AREA, i);
	}
	advise(areas[A_SEQ], AREA, MADV_SEQUENTIAL);
	advise(areas[A_RAND], AREA, MADV_RANDOM);
	advise(areas[A_DONTFORK], AREA, MADV_DONTFORK);
	advise(areas[A_DONTDUMP], AREA, MADV_DONTDUMP);
	advise(areas[A_HUGE], AREA, MADV_HUGEPAGE);
	advise(areas[A_NOHUGE], AREA, MADV_NOHUGEPAGE);
	advise(areas[A_MERGE], AREA, MADV_MERGEABLE);
	advise(areas[A_WIPE], AREA, MADV_WIPEONFORK);
	advise(areas[A_UNMERGE], AREA, MADV_UNMERGEABLE);
	if (mlock(areas[A_LOCK], AREA)) { perror("mlock"); return 1; }
	if (syscall(SYS_mlock2, areas[A_ONFAULT], AREA, MLOCK_ONFAULT)) { perror("mlock2"); return 1; }
	advise(areas[A_MANY], AREA, MADV_DONTFORK);
	advise(areas[A_MANY], AREA, MADV_WIPEONFORK);
	advise(areas[A_MANY], AREA, MADV_DONTDUMP);
	advise(areas[A_MANY], AREA, MADV_RANDOM);
	munmap(areas[A_SPLIT] + 12 * PAGE, 4 * PAGE);
	advise(areas[A_SPLIT] + 4 * PAGE, 4 * PAGE, MADV_SEQUENTIAL);
	if (syscall(__NR_mseal, areas[A_SEAL], AREA, 0)) { perror("mseal"); return 1; }

	for (int i = 0; i < COUNT; i++)
		for (int part = 0; part < 3; part++)
			if (piece(i, part) && vmflags_of(piece(i, part), flags_at_start[i][part], sizeof(flags_at_start[i][part]))) return 1;

	FILE *list = fopen("areas", "w");
	for (int i = 0; i < COUNT; i++)
		for (int part = 0; part < 3; part++)
			if (piece(i, part)) {
				size_t size = i == A_SPLIT ? 4 * PAGE : AREA;
				fprintf(list, "%lx-%lx %s%s\n", (unsigned long)piece(i, part), (unsigned long)piece(i, part) + size, names[i],
					i == A_SPLIT ? (const char *[]){ "-before", "-advised", "-after" }[part] : "");
			}
	fclose(list);

	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	FILE *ready = fopen("ready", "w");
	fprintf(ready, "%d\n", getpid());
	fclose(ready);

	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		const char *bad = check_flags();
		if (!bad) bad = check_contents();
		if (!bad) bad = check_fork();
		if (!bad) { bad = check_behaviour(); restore_shared_page(); }
		FILE *log = fopen("madvise.log", "a");
		if (bad) fprintf(log, "CORRUPT %s\n", bad);
		else fprintf(log, "OK areas=%d\n", COUNT + 2); /* the split area is three */
		fclose(log);
	}
}
