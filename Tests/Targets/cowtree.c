/* cowtree WORKDIR MIB CHILDREN
 * A pre-fork server in miniature, to check that memory a parent and its children share copy-on-write comes back
 * shared, and that every process still sees its own contents. The parent maps MIB MiB of private anonymous memory
 * and fills it with data that differs on every page (no zero pages, nothing KSM could merge), then forks CHILDREN
 * children (at least 2) and, after the fork, changes its own page 0 (the children must still see the old one).
 *   child 0          writes nothing;
 *   child i (i > 0)  writes 4 pages of its own at page 64*i, discards (MADV_DONTNEED) page 1, so that it reads
 *                    zeros where the parent has data, and maps a private area of its own (1 page, 'c' + i);
 *   the last child   forks a grandchild that inherits everything it has and writes one page more (page 2).
 * WORKDIR/children lists the children's PIDs, one a line (the grandchild last); WORKDIR/ready gets the parent's.
 * On SIGUSR1 the parent checks its memory, signals every descendant, waits for each to check its own and report
 * through a small shared page, then appends "OK processes=N pid=P" or "CORRUPT <who> <what> pid=P" to
 * WORKDIR/cowtree.log. SIGTERM kills the tree. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

#define PAGE 4096
#define MAX_CHILDREN 64
#define WRITTEN_PAGES 4

/* Shared between the tree (MAP_SHARED): the round the parent asks for and each process's answer. */
struct board {
	volatile int round;
	volatile int answered[MAX_CHILDREN + 1];
	volatile int bad[MAX_CHILDREN + 1];
	volatile int ready[MAX_CHILDREN + 1];
};

static struct board *board;
static unsigned char *data, *own;
static size_t pages;
static int children_count;
static pid_t pids[MAX_CHILDREN + 1];
static volatile sig_atomic_t check_requested, stop_requested;

static void on_usr1(int s) { (void)s; check_requested = 1; }
static void on_term(int s) { (void)s; stop_requested = 1; }

/* What the parent wrote in page `page` before the fork: a word that differs on every page. */
static uint64_t original(size_t page, size_t word) { return (page * 0x9E3779B97F4A7C15ull) ^ (word * 0xC2B2AE3D27D4EB4Full) ^ 0x5555; }

static void fill(size_t page, uint64_t salt)
{
	uint64_t *words = (uint64_t *)(data + page * PAGE);
	for (size_t w = 0; w < PAGE / 8; w++) words[w] = original(page, w) ^ salt;
}

/* What process `who` (0 the parent, i+1 child i, children_count+1 the grandchild) must see in `page`:
 * the salt its page carries, or -1 for zeros. */
static long long expected_salt(int who, size_t page)
{
	int grandchild = who == children_count + 1;
	int child = grandchild ? children_count - 1 : who - 1; /* the grandchild inherits its parent's pages */
	if (who == 0) return page == 0 ? 0xAAAA : 0;
	if (child > 0 && page >= 64u * child && page < 64u * child + WRITTEN_PAGES) return 0x1000 + child;
	if (child > 0 && page == 1) return -1;
	if (grandchild && page == 2) return 0x2222;
	return 0;
}

static const char *check(int who)
{
	for (size_t page = 0; page < pages; page++) {
		long long salt = expected_salt(who, page);
		const uint64_t *words = (const uint64_t *)(data + page * PAGE);
		for (size_t w = 0; w < PAGE / 8; w++) {
			uint64_t want = salt < 0 ? 0 : original(page, w) ^ (uint64_t)salt;
			if (words[w] != want) {
				static char what[64];
				snprintf(what, sizeof what, "page-%zu", page);
				return what;
			}
		}
	}
	if (who > 1 && who <= children_count && own[0] != 'c' + who - 1) return "own-area";
	return NULL;
}

/* Waits for rounds with SIGUSR1 blocked but while it waits, so that none is lost between the check and the wait. */
static void serve(int who)
{
	sigset_t usr1, none;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigemptyset(&none);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	board->ready[who] = 1;
	for (;;) {
		while (!check_requested) sigsuspend(&none);
		check_requested = 0;
		int round = board->round;
		board->bad[who] = check(who) != NULL;
		board->answered[who] = round;
	}
}

static void child(int index)
{
	signal(SIGTERM, SIG_DFL);
	int who = index + 1;
	if (index > 0) {
		for (size_t p = 64u * index; p < 64u * index + WRITTEN_PAGES; p++) fill(p, 0x1000 + index);
		madvise(data + PAGE, PAGE, MADV_DONTNEED);
		own = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (own == MAP_FAILED) _exit(1);
		own[0] = 'c' + index;
	}
	if (index == children_count - 1) {
		pid_t grandchild = fork();
		if (grandchild < 0) _exit(1);
		if (grandchild == 0) {
			fill(2, 0x2222);
			serve(children_count + 1);
		}
		pids[children_count] = grandchild;
	}
	serve(who);
}

static void report(const char *line)
{
	FILE *f = fopen("cowtree.log", "a");
	if (f) { fprintf(f, "%s pid=%d\n", line, getpid()); fclose(f); }
}

static void sleep_ms(int ms) { struct timespec t = { 0, ms * 1000000L }; nanosleep(&t, NULL); }

int main(int argc, char **argv)
{
	if (argc < 4) { fprintf(stderr, "usage: cowtree WORKDIR MIB CHILDREN\n"); return 2; }
	if (chdir(argv[1])) { perror(argv[1]); return 1; }
	size_t mib = strtoul(argv[2], NULL, 10);
	children_count = atoi(argv[3]);
	if (mib < 2 || children_count < 2 || children_count > MAX_CHILDREN - 1 || 64u * children_count + WRITTEN_PAGES > mib * 256) {
		fprintf(stderr, "cowtree: MIB >= 2, 2 <= CHILDREN < %d, and 64 pages per child must fit\n", MAX_CHILDREN);
		return 2;
	}
	pages = mib * 256;
	board = mmap(NULL, sizeof *board, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	data = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (board == MAP_FAILED || data == MAP_FAILED) { perror("mmap"); return 1; }
	/* Small pages: a huge page a child writes to would be split, which is not what a page-sized write shares. */
	madvise(data, pages * PAGE, MADV_NOHUGEPAGE);
	for (size_t p = 0; p < pages; p++) fill(p, 0);

	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);

	for (int i = 0; i < children_count; i++) {
		pid_t pid = fork();
		if (pid < 0) { perror("fork"); return 1; }
		if (pid == 0) child(i);
		pids[i] = pid;
	}
	fill(0, 0xAAAA);
	int everyone = children_count + 2;
	for (int ms = 0;; ms++) {
		int ready = 0;
		for (int who = 1; who < everyone; who++) ready += board->ready[who];
		if (ready == everyone - 1) break;
		if (ms > 10000) { report("CORRUPT children-not-ready"); return 1; }
		sleep_ms(1);
	}
	/* The grandchild's PID: the last child's only child. */
	char path[64], line[4096];
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", pids[children_count - 1], pids[children_count - 1]);
	FILE *c = fopen(path, "r");
	if (!c || !fgets(line, sizeof line, c)) { report("CORRUPT no-grandchild"); return 1; }
	fclose(c);
	pids[children_count] = atoi(line);
	FILE *list = fopen("children", "w");
	for (int i = 0; i <= children_count; i++) fprintf(list, "%d\n", pids[i]);
	fclose(list);
	announce_ready(getpid());

	sigset_t usr1, none;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigaddset(&usr1, SIGTERM);
	sigemptyset(&none);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	for (;;) {
		while (!check_requested && !stop_requested) sigsuspend(&none);
		if (stop_requested) {
			for (int i = 0; i <= children_count; i++) kill(pids[i], SIGKILL);
			while (wait(NULL) > 0) {}
			return 0;
		}
		check_requested = 0;
		int round = ++board->round;
		for (int i = 0; i <= children_count; i++) kill(pids[i], SIGUSR1);
		const char *mine = check(0);
		char result[128] = "";
		for (int who = 1; who < everyone && !result[0]; who++) {
			for (int ms = 0; board->answered[who] != round; ms++) {
				if (ms > 30000) { snprintf(result, sizeof result, "CORRUPT process-%d no-answer", pids[who - 1]); break; }
				sleep_ms(1);
			}
			if (!result[0] && board->bad[who]) snprintf(result, sizeof result, "CORRUPT process-%d %s", pids[who - 1], "contents");
		}
		if (!result[0] && mine) snprintf(result, sizeof result, "CORRUPT parent %s", mine);
		if (!result[0]) snprintf(result, sizeof result, "OK processes=%d", everyone);
		report(result);
	}
}
