/* hugetlb WORKDIR HUGETLBFS_DIR
 * A test target holding hugetlb memory (2 MiB pages) in every shape CRIU saves, that verifies it after a checkpoint
 * and restore:
 *   private  anonymous MAP_PRIVATE|MAP_HUGETLB, 2 huge pages, every byte written with a pattern
 *   shared   anonymous MAP_SHARED|MAP_HUGETLB, 1 huge page, shared with a forked child: each wrote its half before the
 *            checkpoint; after it, each writes a new mark that the other must see
 *   memfd    memfd_create(MFD_HUGETLB|MFD_ALLOW_SEALING), 1 huge page, sealed F_SEAL_SHRINK|F_SEAL_GROW, open, mapped
 *            shared (pages of 'M') and private (page 0 written 'P', the rest still the file's)
 *   file     a file of HUGETLBFS_DIR (a hugetlbfs mount), 1 huge page mapped shared, written 'F', its descriptor closed
 *   sysv     a System V segment made with SHM_HUGETLB, 1 huge page, attached and written 'V', marked for removal
 * Each area must still be hugetlb memory (VmFlags ht, KernelPageSize 2048 kB in /proc/self/smaps).
 * WORKDIR/ready holds the pid once set-up is done. On SIGUSR1 it checks each and appends "OK pid=P" or
 * "FAIL what pid=P" to WORKDIR/hugetlb.log. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

#define HUGE (2UL << 20)
#define PAGE 4096
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << 26)
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4
#endif
#define PARENT_MARK 16
#define CHILD_MARK (HUGE / 2 + 16)

static volatile sig_atomic_t check_requested;
static unsigned char *private_area, *shared_area, *memfd_shared, *memfd_private, *file_area, *sysv_area;
static int memfd, segment;
static pid_t child;
static char file_path[160];
static char failure[256];

static void on_usr1(int s) { (void)s; check_requested = 1; }

static unsigned char pattern(size_t i) { return (unsigned char)(i * 31 + (i >> 12) * 7 + 1); }

static int filled(const unsigned char *p, unsigned char c, size_t length)
{
	for (size_t i = 0; i < length; i++)
		if (p[i] != c) return 0;
	return 1;
}

#define FAIL(...) do { snprintf(failure, sizeof(failure), __VA_ARGS__); return 0; } while (0)

/* The area at address is hugetlb memory of 2 MiB pages, as /proc/self/smaps says. */
static int is_huge(const void *address, const char *what)
{
	FILE *smaps = fopen("/proc/self/smaps", "r");
	char line[1024];
	int inside = 0, size_ok = 0, flag_ok = 0;
	if (!smaps) FAIL("%s: smaps: %s", what, strerror(errno));
	while (fgets(line, sizeof(line), smaps)) {
		unsigned long start, end;
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			inside = start == (unsigned long)address;
			continue;
		}
		if (!inside) continue;
		if (!strncmp(line, "KernelPageSize:", 15)) size_ok = strstr(line, " 2048 kB") != NULL;
		if (!strncmp(line, "VmFlags:", 8)) flag_ok = strstr(line, " ht") != NULL;
	}
	fclose(smaps);
	if (!size_ok || !flag_ok) FAIL("%s: not hugetlb memory of 2 MiB pages after the restore (KernelPageSize %s, ht %s)", what, size_ok ? "ok" : "wrong", flag_ok ? "set" : "missing");
	return 1;
}

static int check_private(void)
{
	for (size_t i = 0; i < 2 * HUGE; i++)
		if (private_area[i] != pattern(i)) FAIL("private: byte %zu holds %d, not %d", i, private_area[i], pattern(i));
	return is_huge(private_area, "private");
}

/* The child's side: its half is there, and the parent's mark written after the restore shows; then its own mark. */
static int child_check(void)
{
	struct timespec pause = { 0, 10 * 1000 * 1000 };
	if (!filled(shared_area + HUGE / 2 + PAGE, 'c', PAGE)) FAIL("shared: the child's half is lost");
	if (!filled(shared_area + PAGE, 'p', PAGE)) FAIL("shared: the child does not see the parent's half");
	for (int i = 0; i < 500 && shared_area[PARENT_MARK] != 'A'; i++) nanosleep(&pause, NULL);
	if (shared_area[PARENT_MARK] != 'A') FAIL("shared: the child does not see the parent's write made after the restore");
	if (!is_huge(shared_area, "shared (child)")) return 0;
	shared_area[CHILD_MARK] = 'B';
	return 1;
}

static int check_shared(void)
{
	int status;
	if (!filled(shared_area + PAGE, 'p', PAGE)) FAIL("shared: the parent's half is lost");
	if (!filled(shared_area + HUGE / 2 + PAGE, 'c', PAGE)) FAIL("shared: the parent does not see the child's half");
	shared_area[PARENT_MARK] = 'A';
	kill(child, SIGUSR1);
	if (waitpid(child, &status, 0) != child) FAIL("shared: waitpid of the child: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) FAIL("shared: the child's check failed (status 0x%x; its reason is in hugetlb.log)", status);
	if (shared_area[CHILD_MARK] != 'B') FAIL("shared: the parent does not see the child's write made after the restore");
	return is_huge(shared_area, "shared");
}

static int check_memfd(void)
{
	struct stat st;
	unsigned char byte;
	int seals = fcntl(memfd, F_GET_SEALS);
	if (fstat(memfd, &st) || st.st_size != (off_t)HUGE) FAIL("memfd: size %ld, not %lu", (long)st.st_size, HUGE);
	if (seals != (F_SEAL_SHRINK | F_SEAL_GROW)) FAIL("memfd: seals 0x%x, not 0x%x", seals, F_SEAL_SHRINK | F_SEAL_GROW);
	if (ftruncate(memfd, HUGE * 2) == 0 || errno != EPERM) FAIL("memfd: it grew despite F_SEAL_GROW (errno %d)", errno);
	if (pread(memfd, &byte, 1, HUGE / 2) != 1 || byte != 'M') FAIL("memfd: reading its descriptor gives '%c', not 'M'", byte);
	if (!filled(memfd_shared, 'M', HUGE)) FAIL("memfd: the shared mapping lost its 'M's");
	if (!filled(memfd_private, 'P', PAGE)) FAIL("memfd: the private mapping lost its written page");
	if (!filled(memfd_private + PAGE, 'M', PAGE)) FAIL("memfd: the private mapping's unwritten page is not the file's");
	if (!is_huge(memfd_shared, "memfd shared mapping") || !is_huge(memfd_private, "memfd private mapping")) return 0;
	/* The private page is the process's own: the file's later writes stay out of it. */
	memfd_shared[0] = 'X';
	if (memfd_private[0] != 'P') FAIL("memfd: the private mapping's written page is the file's again");
	return 1;
}

static int check_file(void)
{
	unsigned char byte;
	int fd;
	if (!filled(file_area, 'F', HUGE)) FAIL("file: the shared mapping lost its 'F's");
	if (!is_huge(file_area, "hugetlbfs file")) return 0;
	/* Still the file's pages: a write through the mapping is in the file. */
	file_area[100] = 'G';
	fd = open(file_path, O_RDONLY);
	if (fd < 0) FAIL("file: %s: %s", file_path, strerror(errno));
	if (pread(fd, &byte, 1, 100) != 1 || byte != 'G') { close(fd); FAIL("file: a write through the mapping is not in %s", file_path); }
	close(fd);
	return 1;
}

static int check_sysv(void)
{
	struct shmid_ds ds;
	if (shmctl(segment, IPC_STAT, &ds)) FAIL("sysv: IPC_STAT of segment %d: %s", segment, strerror(errno));
	if (ds.shm_segsz != HUGE) FAIL("sysv: segment of %zu bytes, not %lu", (size_t)ds.shm_segsz, HUGE);
	if (!filled(sysv_area, 'V', HUGE)) FAIL("sysv: the segment lost its 'V's");
	return is_huge(sysv_area, "sysv");
}

static void *map_huge(size_t length, int flags, int fd)
{
	void *p = mmap(NULL, length, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (p == MAP_FAILED) die("mmap of hugetlb memory");
	return p;
}

int main(int argc, char **argv)
{
	if (argc != 3) { fprintf(stderr, "usage: hugetlb WORKDIR HUGETLBFS_DIR\n"); return 2; }
	if (chdir(argv[1])) die(argv[1]);
	FILE *log = fopen("hugetlb.log", "a");
	if (!log) die("log");
	setvbuf(log, NULL, _IOLBF, 0);
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);

	private_area = map_huge(2 * HUGE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1);
	for (size_t i = 0; i < 2 * HUGE; i++) private_area[i] = pattern(i);

	shared_area = map_huge(HUGE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1);
	memset(shared_area, 'p', HUGE / 2);

	memfd = memfd_create("huge", MFD_HUGETLB | MFD_ALLOW_SEALING);
	if (memfd < 0 || ftruncate(memfd, HUGE)) die("memfd_create(MFD_HUGETLB)");
	memfd_shared = map_huge(HUGE, MAP_SHARED, memfd);
	memset(memfd_shared, 'M', HUGE);
	memfd_private = map_huge(HUGE, MAP_PRIVATE, memfd);
	memset(memfd_private, 'P', PAGE);
	if (fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)) die("F_ADD_SEALS");

	snprintf(file_path, sizeof(file_path), "%s/hugetlb-file", argv[2]);
	int fd = open(file_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, HUGE)) die(file_path);
	file_area = map_huge(HUGE, MAP_SHARED, fd);
	memset(file_area, 'F', HUGE);
	close(fd);

	segment = shmget(IPC_PRIVATE, HUGE, IPC_CREAT | SHM_HUGETLB | 0600);
	if (segment < 0) die("shmget(SHM_HUGETLB)");
	sysv_area = shmat(segment, NULL, 0);
	if (sysv_area == (void *)-1) die("shmat");
	memset(sysv_area, 'V', HUGE);
	shmctl(segment, IPC_RMID, NULL); /* gone with its last detach */

	child = fork();
	if (child < 0) die("fork");
	if (child == 0) {
		memset(shared_area + HUGE / 2, 'c', HUGE / 2);
		for (;;) {
			pause();
			if (!check_requested) continue;
			int ok = child_check();
			if (!ok) fprintf(log, "FAIL child: %s pid=%d\n", failure, getpid());
			_exit(ok ? 0 : 1);
		}
	}
	/* The child's half is written before the parent says it is ready. */
	while (shared_area[HUGE / 2 + HUGE / 2 - 1] != 'c') usleep(1000);
	announce_ready(getpid());

	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		int ok = check_private() && check_shared() && check_memfd() && check_file() && check_sysv();
		if (ok) fprintf(log, "OK pid=%d\n", getpid());
		else fprintf(log, "FAIL %s pid=%d\n", failure, getpid());
	}
}
