/* memoryvariants WORKDIR
 * A test target holding memory in the shapes CRIU's suite tries (memfd variants, private mappings of shared memory,
 * areas changed since they were mapped, a sparse ghost file, file mappings whose protection differs from the file's
 * open mode), that verifies them after a checkpoint and restore:
 *   sealed    memfd, 3 pages of 'S', sealed F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL: seals kept, ftruncate refused
 *   frozen    memfd, 1 page of 'Z', sealed F_SEAL_WRITE: write(2) refused
 *   cow       memfd, 4 pages of 'M', mapped MAP_PRIVATE and page 0 written 'P': the written page is the process's
 *             own, the others still the file's (a write to the file after the restore shows through them)
 *   posix     POSIX shared memory (shm_open), 2 pages of 'Q', mapped MAP_PRIVATE with page 1 written 'R'
 *   grown     anonymous, 2 pages mapped, grown to 4 with mremap; and a shared memfd mapping grown from 2 to 4 pages
 *   split     anonymous, 5 pages; page 1 made read-only (mprotect), page 3 unmapped (a hole)
 *   sparse    a deleted file of 1 MiB with data in its first page and at 512 KiB only, open: holes stay holes
 *   rwshared  a file opened O_RDWR, mapped MAP_SHARED PROT_READ: it may be made writable (mprotect) and written
 *   roprivate a file opened O_RDONLY, mapped MAP_PRIVATE PROT_READ | PROT_WRITE with page 0 written 'W'
 *   demoted   a file mapped MAP_SHARED read-write, then mprotect-ed read-only and its descriptor closed: it may be
 *             made writable again
 * WORKDIR/ready holds the pid once set-up is done. On SIGUSR1 it checks each and appends "OK pid=P" or
 * "FAIL what pid=P" to WORKDIR/memoryvariants.log. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "selfcheck.h"

#define PAGE 4096
#define SPARSE_SIZE (1 << 20)
#define SPARSE_SECOND (512 << 10)

static volatile sig_atomic_t check_requested;
static int sealed, frozen, cow_fd, posix_fd, grown_fd, sparse, rwshared_fd;
static char *cow, *posix, *grown, *grown_shared, *split, *rwshared, *roprivate, *demoted;
static blkcnt_t sparse_blocks;
static char posix_name[64];
static char failure[256];

static void on_usr1(int s) { (void)s; check_requested = 1; }

static int fail(const char *format, const char *what, long got)
{
	snprintf(failure, sizeof(failure), format, what, got);
	return 0;
}

static int filled(const char *p, char c, size_t length)
{
	for (size_t i = 0; i < length; i++)
		if (p[i] != c) return 0;
	return 1;
}

#define PAGE_IS(p, c, what) do { if (!filled(p, c, PAGE)) return fail("%s holds '%c'", what, (p)[0]); } while (0)

static int file_page_is(int fd, off_t offset, char c, const char *what)
{
	char page[PAGE];
	if (pread(fd, page, PAGE, offset) != PAGE) return fail("%s: read %ld", what, errno);
	if (!filled(page, c, PAGE)) return fail("%s holds '%c'", what, page[0]);
	return 1;
}

static void fill_file(int fd, char c, size_t length)
{
	char page[PAGE];
	memset(page, c, PAGE);
	for (size_t done = 0; done < length; done += PAGE)
		if (pwrite(fd, page, PAGE, (off_t)done) != PAGE) die("pwrite");
}

/* The protection of the area at p as /proc/self/maps shows it ("rw-p"), or "" when nothing is mapped there. */
static const char *protection(const void *p)
{
	static char found[8];
	found[0] = 0;
	FILE *maps = fopen("/proc/self/maps", "r");
	unsigned long start, end;
	char perms[8];
	while (fscanf(maps, "%lx-%lx %7s%*[^\n]", &start, &end, perms) == 3)
		if ((unsigned long)p >= start && (unsigned long)p < end) strcpy(found, perms);
	fclose(maps);
	return found;
}

#define PROTECTION_IS(p, want, what) \
	do { if (strcmp(protection(p), want) != 0) { snprintf(failure, sizeof(failure), "%s is mapped '%s', not " want, what, protection(p)); return 0; } } while (0)

static int memfds_back(void)
{
	int seals = fcntl(sealed, F_GET_SEALS);
	if (seals != (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) return fail("%s are %lx", "sealed's seals", seals);
	if (!file_page_is(sealed, 2 * PAGE, 'S', "sealed page 2")) return 0;
	if (ftruncate(sealed, PAGE) == 0 || errno != EPERM) return fail("%s: errno %ld", "sealed ftruncate", errno);
	if (fcntl(frozen, F_GET_SEALS) != F_SEAL_WRITE) return fail("%s are %lx", "frozen's seals", fcntl(frozen, F_GET_SEALS));
	if (pwrite(frozen, "x", 1, 0) == 1 || errno != EPERM) return fail("%s: errno %ld", "frozen write", errno);
	if (!file_page_is(frozen, 0, 'Z', "frozen")) return 0;

	PAGE_IS(cow, 'P', "cow page 0");
	PAGE_IS(cow + PAGE, 'M', "cow page 1");
	if (!file_page_is(cow_fd, 0, 'M', "the memfd under cow")) return 0;
	if (pwrite(cow_fd, "N", 1, 2 * PAGE) != 1) return fail("%s: %ld", "write to cow's memfd", errno);
	if (cow[2 * PAGE] != 'N') return fail("%s: page 2 holds '%c'", "cow no longer maps its memfd", cow[2 * PAGE]);
	PROTECTION_IS(cow, "rw-p", "cow");

	PAGE_IS(posix, 'Q', "posix page 0");
	PAGE_IS(posix + PAGE, 'R', "posix page 1");
	if (!file_page_is(posix_fd, PAGE, 'Q', "the shared memory under posix")) return 0;
	return 1;
}

static int areas_back(void)
{
	const char want[] = "abcd";
	for (int i = 0; i < 4; i++) {
		PAGE_IS(grown + i * PAGE, want[i], "grown");
		PAGE_IS(grown_shared + i * PAGE, want[i], "grown_shared");
	}
	memset(grown_shared + 3 * PAGE, 'x', PAGE);
	if (!file_page_is(grown_fd, 3 * PAGE, 'x', "grown_shared's memfd after a write through it")) return 0;
	for (int i = 0; i < 5; i++)
		if (i != 3) PAGE_IS(split + i * PAGE, (char)('0' + i), "split");
	PROTECTION_IS(split, "rw-p", "split page 0");
	PROTECTION_IS(split + PAGE, "r--p", "split page 1");
	PROTECTION_IS(split + 2 * PAGE, "rw-p", "split page 2");
	if (protection(split + 3 * PAGE)[0] != 0) return fail("%s: %ld", "split's hole is mapped", 3);
	PROTECTION_IS(split + 4 * PAGE, "rw-p", "split page 4");
	return 1;
}

static int sparse_back(void)
{
	struct stat status;
	fstat(sparse, &status);
	if (status.st_size != SPARSE_SIZE || status.st_nlink != 0) return fail("%s: size %ld", "sparse", status.st_size);
	if (status.st_blocks > sparse_blocks) return fail("%s: %ld blocks", "sparse's holes were filled", status.st_blocks);
	off_t expected[][2] = { { 0, SEEK_DATA }, { PAGE, SEEK_HOLE }, { SPARSE_SECOND, SEEK_DATA }, { SPARSE_SECOND + PAGE, SEEK_HOLE } };
	off_t from[] = { 0, 0, PAGE, SPARSE_SECOND };
	for (int i = 0; i < 4; i++) {
		off_t at = lseek(sparse, from[i], (int)expected[i][1]);
		if (at != expected[i][0]) return fail("%s: found %ld", expected[i][1] == SEEK_DATA ? "sparse SEEK_DATA" : "sparse SEEK_HOLE", at);
	}
	if (!file_page_is(sparse, 0, 's', "sparse page 0") || !file_page_is(sparse, SPARSE_SECOND, 't', "sparse at 512 KiB")) return 0;
	return file_page_is(sparse, 2 * PAGE, 0, "sparse's hole");
}

static int protections_back(void)
{
	PROTECTION_IS(rwshared, "r--s", "rwshared");
	if (mprotect(rwshared, PAGE, PROT_READ | PROT_WRITE) != 0) return fail("%s: errno %ld", "rwshared mprotect(PROT_WRITE)", errno);
	rwshared[0] = 'G';
	char c;
	if (pread(rwshared_fd, &c, 1, 0) != 1 || c != 'G') return fail("%s: file holds '%c'", "rwshared write", c);
	PROTECTION_IS(roprivate, "rw-p", "roprivate");
	PAGE_IS(roprivate, 'W', "roprivate page 0");
	PAGE_IS(roprivate + PAGE, 'O', "roprivate page 1");
	PROTECTION_IS(demoted, "r--s", "demoted");
	PAGE_IS(demoted, 'D', "demoted");
	if (mprotect(demoted, PAGE, PROT_READ | PROT_WRITE) != 0) return fail("%s: errno %ld", "demoted mprotect(PROT_WRITE)", errno);
	demoted[0] = 'd';
	return 1;
}

static const char *check(void)
{
	if (memfds_back() && areas_back() && sparse_back() && protections_back()) return NULL;
	return failure;
}

static int new_memfd(const char *name, unsigned flags, char c, size_t length)
{
	int fd = memfd_create(name, flags);
	if (fd < 0) die(name);
	if (ftruncate(fd, (off_t)length) != 0) die("ftruncate");
	fill_file(fd, c, length);
	return fd;
}

static int new_file(const char *name, char c, size_t length)
{
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) die(name);
	fill_file(fd, c, length);
	return fd;
}

static char *map(size_t length, int protection, int flags, int fd)
{
	char *p = mmap(NULL, length, protection, flags, fd, 0);
	if (p == MAP_FAILED) die("mmap");
	return p;
}

int main(int argc, char **argv)
{
	if (argc != 2 || chdir(argv[1]) != 0) die("usage: memoryvariants WORKDIR");
	FILE *log = fopen("memoryvariants.log", "a");
	if (!log) die("log");
	setvbuf(log, NULL, _IOLBF, 0);

	sealed = new_memfd("sealed", MFD_ALLOW_SEALING, 'S', 3 * PAGE);
	if (fcntl(sealed, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) die("F_ADD_SEALS");
	frozen = new_memfd("frozen", MFD_ALLOW_SEALING, 'Z', PAGE);
	if (fcntl(frozen, F_ADD_SEALS, F_SEAL_WRITE) != 0) die("F_SEAL_WRITE");
	cow_fd = new_memfd("cow", 0, 'M', 4 * PAGE);
	cow = map(4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, cow_fd);
	memset(cow, 'P', PAGE);

	snprintf(posix_name, sizeof(posix_name), "/criups-memoryvariants-%d", getpid());
	posix_fd = shm_open(posix_name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (posix_fd < 0) die("shm_open");
	shm_unlink(posix_name); /* deleted, still open and mapped: nothing left behind */
	if (ftruncate(posix_fd, 2 * PAGE) != 0) die("ftruncate(posix)");
	fill_file(posix_fd, 'Q', 2 * PAGE);
	posix = map(2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, posix_fd);
	memset(posix + PAGE, 'R', PAGE);

	grown = map(2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	memset(grown, 'a', PAGE);
	memset(grown + PAGE, 'b', PAGE);
	grown = mremap(grown, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE);
	if (grown == MAP_FAILED) die("mremap(grown)");
	memset(grown + 2 * PAGE, 'c', PAGE);
	memset(grown + 3 * PAGE, 'd', PAGE);
	grown_fd = new_memfd("grown", 0, 0, 4 * PAGE);
	grown_shared = map(2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, grown_fd);
	memset(grown_shared, 'a', PAGE);
	memset(grown_shared + PAGE, 'b', PAGE);
	grown_shared = mremap(grown_shared, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE);
	if (grown_shared == MAP_FAILED) die("mremap(grown_shared)");
	memset(grown_shared + 2 * PAGE, 'c', PAGE);
	memset(grown_shared + 3 * PAGE, 'd', PAGE);

	sparse = open("sparse", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (sparse < 0 || ftruncate(sparse, SPARSE_SIZE) != 0) die("sparse");
	char page[PAGE];
	memset(page, 's', PAGE);
	if (pwrite(sparse, page, PAGE, 0) != PAGE) die("pwrite(sparse)");
	memset(page, 't', PAGE);
	if (pwrite(sparse, page, PAGE, SPARSE_SECOND) != PAGE) die("pwrite(sparse)");
	fsync(sparse);
	struct stat status;
	fstat(sparse, &status);
	sparse_blocks = status.st_blocks;
	unlink("sparse");

	rwshared_fd = new_file("rwshared", 'F', 2 * PAGE);
	rwshared = map(2 * PAGE, PROT_READ, MAP_SHARED, rwshared_fd);
	int ro = new_file("roprivate", 'O', 2 * PAGE);
	close(ro);
	ro = open("roprivate", O_RDONLY);
	roprivate = map(2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro);
	close(ro);
	memset(roprivate, 'W', PAGE);
	int rw = new_file("demoted", 'D', PAGE);
	demoted = map(PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, rw);
	close(rw);
	if (mprotect(demoted, PAGE, PROT_READ) != 0) die("mprotect(demoted)");

	/* Last, so that no later mapping lands in its hole. */
	split = map(5 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	for (int i = 0; i < 5; i++) memset(split + i * PAGE, '0' + i, PAGE);
	if (mprotect(split + PAGE, PAGE, PROT_READ) != 0) die("mprotect(split)");
	if (munmap(split + 3 * PAGE, PAGE) != 0) die("munmap(split)");

	signal(SIGUSR1, on_usr1);
	announce_ready(getpid());
	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		const char *failed = check();
		if (failed) fprintf(log, "FAIL %s pid=%d\n", failed, getpid());
		else fprintf(log, "OK pid=%d\n", getpid());
	}
}
