/* sharedmem WORKDIR
 * A small tree sharing memory that checks, after a restore, that what was shared is still shared.
 * The parent sets up, then forks two children:
 *   anon     - 1 MiB + a page of MAP_SHARED|MAP_ANONYMOUS memory, a pattern in it, shared by all three;
 *   partial  - 4 pages of shared anonymous memory; the parent unmaps its first page (its mapping starts at page
 *              offset 1), the children keep all 4;
 *   shrunk   - 4 pages of shared anonymous memory in the parent only, page 3 holding 'Z', shrunk with mremap to
 *              1 page (the object is larger than its mapping); the check grows it back and reads page 3;
 *   main     - memfd "sharedmem main" (MFD_CLOEXEC|MFD_ALLOW_SEALING, sealed F_SEAL_SHRINK), 256 KiB: the parent
 *              has it open at offset 1234 and mapped MAP_SHARED; child A only maps it (its descriptor closed),
 *              child B only has the descriptor (no mapping);
 *   sealed   - memfd "sealed" with F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE|F_SEAL_SEAL, mapped read-only shared and
 *              MAP_PRIVATE writable with one copy-on-write page changed;
 *   future   - memfd "future" mapped shared writable, then sealed F_SEAL_FUTURE_WRITE: the old mapping stays
 *              writable, a new writable shared mapping is refused;
 *   noexec   - memfd "noexec" made with MFD_NOEXEC_SEAL (F_SEAL_EXEC, no x bits);
 *   double   - memfd "doublemapper" mapped twice, read-write and read-execute (as .NET maps its code): a function
 *              written through one is called through the other.
 * On SIGUSR1 the parent bumps a round number in the shared memory and the memfd, signals both children, and waits
 * for each to acknowledge through both objects (child A through its memfd mapping, child B through its descriptor),
 * then checks everything and appends "OK processes=3 pid=P" or "CORRUPT <what> pid=P" to WORKDIR/sharedmem.log.
 * SIGTERM kills the children and exits. Writes WORKDIR/ready when set up. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

/* Older C libraries lack these (Linux 6.3). */
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

#define PAGE 4096
#define DATA (1u << 20)
#define MAIN_SIZE (256u << 10)

struct anon {
	volatile int round;
	volatile int ack[2];
	volatile int ready[2];
	volatile int bad[2];
	char pad[PAGE - 7 * sizeof(int)];
	unsigned char data[DATA];
};

/* The start of the main memfd. */
struct header { volatile int round; volatile int ack[2]; };

static struct anon *anon;
static unsigned char *partial, *shrunk, *sealed_ro, *sealed_priv, *future;
static struct header *main_map;
static unsigned char *double_rw, *double_rx;
static int main_fd, sealed_fd, future_fd, noexec_fd, double_fd;
static pid_t children[2];
static volatile sig_atomic_t check_requested, stop_requested;

static void on_usr1(int s) { (void)s; check_requested = 1; }
static void on_term(int s) { (void)s; stop_requested = 1; }

static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + 3); }

static void sleep_ms(int ms) { struct timespec t = { 0, ms * 1000000L }; nanosleep(&t, NULL); }

/* Child A writes this page after the fork; everyone else sees it. */
#define CHILD_PAGE (512u << 10)

static const char *check_anon_data(void)
{
	for (size_t i = 0; i < DATA; i++) {
		unsigned char want = (i >= CHILD_PAGE && i < CHILD_PAGE + PAGE) ? 0xA5 : pattern(i);
		if (anon->data[i] != want) return "anon-data";
	}
	return NULL;
}

/* Child A: the memfd only mapped. Child B: the memfd only open. */
static void child(int which)
{
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGTERM, SIG_DFL);
	if (which == 0) {
		close(main_fd);
		memset(anon->data + CHILD_PAGE, 0xA5, PAGE);
	} else {
		munmap(main_map, MAIN_SIZE);
		main_map = NULL;
	}
	anon->ready[which] = 1;
	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		int round = anon->round;
		struct header h;
		if (which == 0) {
			h.round = main_map->round;
		} else if (pread(main_fd, &h, sizeof(h), 0) != sizeof(h)) {
			anon->bad[which] = 1;
			continue;
		}
		/* partial page 2 carries the round number the parent wrote through its own, offset mapping. */
		if (h.round != round || partial[2 * PAGE] != (unsigned char)round || check_anon_data()) {
			anon->bad[which] = 2;
		}
		if (which == 0) {
			main_map->ack[0] = round;
		} else if (pwrite(main_fd, &round, sizeof(round), offsetof(struct header, ack[1])) != sizeof(round)) {
			anon->bad[which] = 3;
		}
		anon->ack[which] = round;
	}
}

static const char *check_memfd(int fd, const char *name, off_t size, int seals, int cloexec)
{
	static char what[64];
	char path[64], link[256];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) { snprintf(what, sizeof(what), "%s-missing", name); return what; }
	link[n] = 0;
	char want[256];
	snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
	struct stat st;
	if (strcmp(link, want) || fstat(fd, &st) || st.st_size != size) { snprintf(what, sizeof(what), "%s-name-or-size", name); return what; }
	if (fcntl(fd, F_GET_SEALS) != seals) { snprintf(what, sizeof(what), "%s-seals", name); return what; }
	if (!!(fcntl(fd, F_GETFD) & FD_CLOEXEC) != cloexec) { snprintf(what, sizeof(what), "%s-cloexec", name); return what; }
	return NULL;
}

typedef int (*answer_fn)(void);

/* mov eax, imm32; ret */
static void write_function(int value)
{
	double_rw[0] = 0xb8;
	memcpy(double_rw + 1, &value, 4);
	double_rw[5] = 0xc3;
	__builtin___clear_cache((char *)double_rx, (char *)double_rx + 6);
}

static const char *check(void)
{
	int round = anon->round + 1;
	anon->round = round;
	main_map->round = round;
	partial[PAGE] = (unsigned char)round; /* page 2 of the object is page 1 of the parent's mapping */
	anon->bad[0] = anon->bad[1] = 0;
	for (int i = 0; i < 2; i++) kill(children[i], SIGUSR1);
	for (int ms = 0; ms < 3000; ms++) {
		if (anon->ack[0] == round && anon->ack[1] == round && main_map->ack[0] == round && main_map->ack[1] == round) break;
		sleep_ms(1);
	}
	if (anon->ack[0] != round || anon->ack[1] != round) return "children-did-not-answer-through-shared-anonymous-memory";
	if (main_map->ack[0] != round || main_map->ack[1] != round) return "children-did-not-answer-through-the-memfd";
	if (anon->bad[0] || anon->bad[1]) return anon->bad[0] ? "child-a-saw-wrong-data" : "child-b-saw-wrong-data";
	const char *bad = check_anon_data();
	if (bad) return bad;
	for (int p = 1; p < 4; p++) if (partial[(p - 1) * PAGE + 100] != 'a' + p) return "partial-data";

	unsigned char *grown = mremap(shrunk, PAGE, 4 * PAGE, MREMAP_MAYMOVE);
	if (grown == MAP_FAILED) return "shrunk-mremap";
	int tail_ok = grown[3 * PAGE] == 'Z' && grown[0] == 'Y';
	shrunk = mremap(grown, 4 * PAGE, PAGE, 0);
	if (shrunk == MAP_FAILED) return "shrunk-mremap-back";
	if (!tail_ok) return "shrunk-object-lost-its-tail";

	if ((bad = check_memfd(main_fd, "sharedmem main", MAIN_SIZE, F_SEAL_SHRINK, 1))) return bad;
	if (lseek(main_fd, 0, SEEK_CUR) != 1234) return "main-position";
	unsigned char *m = (unsigned char *)main_map;
	for (size_t i = PAGE; i < MAIN_SIZE; i++) if (m[i] != pattern(i)) return "main-data";

	if ((bad = check_memfd(sealed_fd, "sealed", 3 * PAGE, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL, 0))) return bad;
	if (pwrite(sealed_fd, "x", 1, 0) != -1 || errno != EPERM) return "sealed-writable";
	if (sealed_ro[5] != 's' || sealed_ro[PAGE + 5] != 's' || sealed_priv[5] != 's') return "sealed-data";
	if (sealed_priv[PAGE + 5] != 'P') return "sealed-private-copy";

	if ((bad = check_memfd(future_fd, "future", PAGE, F_SEAL_FUTURE_WRITE, 0))) return bad;
	future[10] = (unsigned char)round;
	unsigned char c;
	if (pread(future_fd, &c, 1, 10) != 1 || c != (unsigned char)round) return "future-old-mapping-not-shared";
	void *again = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, future_fd, 0);
	if (again != MAP_FAILED) return "future-seal-missing";

	struct stat st;
	if ((bad = check_memfd(noexec_fd, "noexec", 0, F_SEAL_EXEC, 0))) return bad;
	if (fstat(noexec_fd, &st) || (st.st_mode & 0111)) return "noexec-mode";

	if ((bad = check_memfd(double_fd, "doublemapper", 2 * PAGE, F_SEAL_SEAL, 1))) return bad;
	if (((answer_fn)double_rx)() != round - 1 + 1000) return "double-mapping-old-code";
	write_function(round + 1000);
	if (((answer_fn)double_rx)() != round + 1000) return "double-mapping-not-one-object";
	return NULL;
}

static void report(const char *bad)
{
	FILE *log = fopen("sharedmem.log", "a");
	if (bad) fprintf(log, "CORRUPT %s pid=%d\n", bad, getpid());
	else fprintf(log, "OK processes=3 pid=%d\n", getpid());
	fclose(log);
}

static void *map(size_t size, int prot, int flags, int fd)
{
	void *p = mmap(NULL, size, prot, flags, fd, 0);
	if (p == MAP_FAILED) { perror("mmap"); exit(1); }
	return p;
}

static int memfd(const char *name, unsigned flags, size_t size, char fill)
{
	int fd = memfd_create(name, flags);
	if (fd < 0 || ftruncate(fd, size)) { perror(name); exit(1); }
	char page[PAGE];
	memset(page, fill, sizeof(page));
	for (size_t off = 0; off < size; off += PAGE) if (pwrite(fd, page, PAGE, off) != PAGE) exit(1);
	return fd;
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[1])) { perror("chdir"); return 1; }

	anon = map(sizeof(struct anon), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1);
	for (size_t i = 0; i < DATA; i++) anon->data[i] = pattern(i);
	unsigned char *whole = map(4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1);
	for (int p = 0; p < 4; p++) whole[p * PAGE + 100] = 'a' + p;
	shrunk = map(4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1);
	shrunk[0] = 'Y';
	shrunk[3 * PAGE] = 'Z';
	if (mremap(shrunk, 4 * PAGE, PAGE, 0) != shrunk) { perror("mremap"); return 1; }

	main_fd = memfd_create("sharedmem main", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (main_fd < 0 || ftruncate(main_fd, MAIN_SIZE)) { perror("memfd"); return 1; }
	main_map = map(MAIN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, main_fd);
	for (size_t i = PAGE; i < MAIN_SIZE; i++) ((unsigned char *)main_map)[i] = pattern(i);
	fcntl(main_fd, F_ADD_SEALS, F_SEAL_SHRINK);
	lseek(main_fd, 1234, SEEK_SET);

	sealed_fd = memfd("sealed", MFD_ALLOW_SEALING, 3 * PAGE, 's');
	if (fcntl(sealed_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)) { perror("seal"); return 1; }
	sealed_ro = map(3 * PAGE, PROT_READ, MAP_SHARED, sealed_fd);
	sealed_priv = map(3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, sealed_fd);
	sealed_priv[PAGE + 5] = 'P';

	future_fd = memfd("future", MFD_ALLOW_SEALING, PAGE, 'f');
	future = map(PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, future_fd);
	if (fcntl(future_fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE)) { perror("future seal"); return 1; }

	noexec_fd = memfd_create("noexec", MFD_NOEXEC_SEAL);
	if (noexec_fd < 0) { perror("noexec"); return 1; }

	double_fd = memfd("doublemapper", MFD_CLOEXEC, 2 * PAGE, 0);
	double_rw = map(2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, double_fd);
	double_rx = map(2 * PAGE, PROT_READ | PROT_EXEC, MAP_SHARED, double_fd);
	write_function(1000);

	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	for (int i = 0; i < 2; i++) {
		if (!(children[i] = fork())) { partial = whole; child(i); }
	}
	/* The parent keeps pages 1..3 of "partial" only: its mapping starts at page offset 1. */
	munmap(whole, PAGE);
	partial = whole + PAGE;
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	for (int ms = 0; !(anon->ready[0] && anon->ready[1]); ms++) {
		if (ms > 5000) { report("children-not-ready"); for (int i = 0; i < 2; i++) kill(children[i], SIGKILL); return 1; }
		sleep_ms(1);
	}
	const char *bad = check();
	if (bad) { report(bad); for (int i = 0; i < 2; i++) kill(children[i], SIGKILL); return 1; }
	announce_ready(getpid());

	while (!stop_requested) {
		pause();
		if (check_requested) { check_requested = 0; report(check()); }
	}
	for (int i = 0; i < 2; i++) { kill(children[i], SIGKILL); waitpid(children[i], NULL, 0); }
	return 0;
}
