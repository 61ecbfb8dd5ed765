/* tree WORKDIR
 * A process tree that checks itself after a restore. The root (started in a session of its own) creates:
 *   producer  - its own process group; writes 1, 2, 3... into pipe A
 *   filter    - in the producer's group; copies pipe A to pipe B, doubling each number
 *   consumer  - in the root's group; reads pipe B, checks the sequence 2, 4, 6... has no gap or repeat, and
 *               keeps the last number in a MAP_SHARED file page the root reads
 *   leader    - starts a session of its own and forks two children there: one in its group, one in a group of
 *               its own; the two play ping-pong over a socketpair (the first sends n, the second answers n + 1)
 *               and count the rounds in the shared page
 *   sleeper   - stopped by SIGSTOP
 *   zombie    - exits at once with status 42; the root does not reap it until the end
 *   orphaner  - sets PR_SET_PDEATHSIG to SIGUSR2 (ignored) and sleeps
 * The root is a child subreaper. On SIGUSR1 the root checks that every process is there with its saved
 * session and group, the sleeper is stopped, the zombie is still a zombie, and the pipeline and the ping-pong move
 * with no number lost, then appends
 * "OK processes=N pid=P" or "CORRUPT <what> pid=P" to WORKDIR/tree.log. On SIGTERM it checks once more, reaps
 * the zombie (its status must be 42), kills the others and logs "EXIT ...". Writes WORKDIR/ready when set up. */
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
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

enum { PRODUCER, FILTER, CONSUMER, LEADER, LEADER_CHILD, LEADER_GROUP, SLEEPER, ZOMBIE, ORPHANER, COUNT };
static const char *names[COUNT] = { "producer", "filter", "consumer", "leader", "leader-child", "leader-group", "sleeper", "zombie", "orphaner" };

struct shared { volatile uint64_t consumed, pings; volatile int broken, ping_broken; };
static struct shared *shared;
static pid_t pids[COUNT], sids[COUNT], pgids[COUNT];
static volatile sig_atomic_t check_requested, stop_requested;
static void on_usr1(int s) { (void)s; check_requested = 1; }
static void on_term(int s) { (void)s; stop_requested = 1; }

static void idle(void) { for (;;) pause(); }

static void producer(int out) { for (uint64_t n = 1;; n++) { if (write(out, &n, sizeof(n)) != sizeof(n)) _exit(1); usleep(2000); } }

static void filter(int in, int out)
{
	for (;;) {
		uint64_t n;
		if (read(in, &n, sizeof(n)) != sizeof(n)) _exit(1);
		n *= 2;
		if (write(out, &n, sizeof(n)) != sizeof(n)) _exit(1);
	}
}

static void consumer(int in)
{
	uint64_t expected = 2;
	for (;;) {
		uint64_t n;
		if (read(in, &n, sizeof(n)) != sizeof(n)) _exit(1);
		if (n != expected) shared->broken = 1;
		expected = n + 2;
		shared->consumed = n;
	}
}

static void pinger(int sock)
{
	for (uint64_t n = 1;; n += 2) {
		uint64_t answer;
		if (write(sock, &n, sizeof(n)) != sizeof(n) || read(sock, &answer, sizeof(answer)) != sizeof(answer)) _exit(1);
		if (answer != n + 1) shared->ping_broken = 1;
		shared->pings = answer;
		usleep(2000);
	}
}

static void ponger(int sock)
{
	for (;;) {
		uint64_t n;
		if (read(sock, &n, sizeof(n)) != sizeof(n)) _exit(1);
		n++;
		if (write(sock, &n, sizeof(n)) != sizeof(n)) _exit(1);
	}
}

static char state_of(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0) return '?';
	int n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) return '?';
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p && p[1] ? p[2] : '?';
}

static const char *check(void)
{
	static char what[96];
	for (int i = 0; i < COUNT; i++) {
		if (i == ZOMBIE) continue;
		if (getsid(pids[i]) != sids[i] || getpgid(pids[i]) != pgids[i]) { snprintf(what, sizeof(what), "%s-session-or-group", names[i]); return what; }
	}
	if (state_of(pids[SLEEPER]) != 'T') return "sleeper-not-stopped";
	if (state_of(pids[ZOMBIE]) != 'Z') return "zombie-not-zombie";
	for (int i = 0; i < COUNT; i++) {
		char s = state_of(pids[i]);
		if (s == '?' || (s == 'Z' && i != ZOMBIE)) { snprintf(what, sizeof(what), "%s-missing", names[i]); return what; }
	}
	uint64_t before = shared->consumed, pings = shared->pings;
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	nanosleep(&pause, NULL);
	if (shared->consumed == before) return "pipeline-stuck";
	if (shared->broken) return "pipeline-lost-or-repeated-data";
	if (shared->pings == pings) return "socketpair-stuck";
	if (shared->ping_broken) return "socketpair-lost-or-repeated-data";
	return NULL;
}

static void report(const char *prefix, const char *bad)
{
	FILE *log = fopen("tree.log", "a");
	if (bad) fprintf(log, "%sCORRUPT %s pid=%d\n", prefix, bad, getpid());
	else fprintf(log, "%sOK processes=%d pid=%d\n", prefix, COUNT + 1, getpid());
	fclose(log);
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[1])) { perror("chdir"); return 1; }
	int fd = open("shared.page", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 4096)) { perror("shared"); return 1; }
	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGUSR2, SIG_IGN);
	int a[2], b[2];
	if (pipe(a) || pipe(b)) { perror("pipe"); return 1; }

	if (!(pids[PRODUCER] = fork())) { setpgid(0, 0); close(a[0]); close(b[0]); close(b[1]); producer(a[1]); }
	setpgid(pids[PRODUCER], pids[PRODUCER]);
	if (!(pids[FILTER] = fork())) { setpgid(0, pids[PRODUCER]); close(a[1]); close(b[0]); filter(a[0], b[1]); }
	setpgid(pids[FILTER], pids[PRODUCER]);
	if (!(pids[CONSUMER] = fork())) { close(a[0]); close(a[1]); close(b[1]); consumer(b[0]); }
	close(a[0]); close(a[1]); close(b[0]); close(b[1]);

	int ready[2];
	if (pipe(ready)) return 1;
	if (!(pids[LEADER] = fork())) {
		setsid();
		int sp[2];
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp)) _exit(1);
		pid_t kids[2];
		if (!(kids[0] = fork())) { close(sp[1]); pinger(sp[0]); }
		if (!(kids[1] = fork())) { setpgid(0, 0); close(sp[0]); ponger(sp[1]); }
		setpgid(kids[1], kids[1]);
		close(sp[0]); close(sp[1]);
		if (write(ready[1], kids, sizeof(kids)) != sizeof(kids)) _exit(1);
		idle();
	}
	pid_t kids[2];
	if (read(ready[0], kids, sizeof(kids)) != sizeof(kids)) return 1;
	close(ready[0]); close(ready[1]);
	pids[LEADER_CHILD] = kids[0];
	pids[LEADER_GROUP] = kids[1];
	if (!(pids[SLEEPER] = fork())) { raise(SIGSTOP); idle(); }
	if (!(pids[ZOMBIE] = fork())) _exit(42);
	if (!(pids[ORPHANER] = fork())) { prctl(PR_SET_PDEATHSIG, SIGUSR2); idle(); }

	/* Wait until the layout is in place: the zombie dead, the sleeper stopped. */
	while (state_of(pids[ZOMBIE]) != 'Z' || state_of(pids[SLEEPER]) != 'T') usleep(1000);
	for (int i = 0; i < COUNT; i++) { sids[i] = getsid(pids[i]); pgids[i] = getpgid(pids[i]); }
	sids[ZOMBIE] = getsid(0);

	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	const char *bad = check();
	if (bad) { report("SETUP ", bad); return 1; }
	announce_ready(getpid());

	while (!stop_requested) {
		pause();
		if (check_requested) { check_requested = 0; report("", check()); }
	}
	bad = check();
	int status = 0;
	if (!bad && (waitpid(pids[ZOMBIE], &status, WNOHANG) != pids[ZOMBIE] || !WIFEXITED(status) || WEXITSTATUS(status) != 42))
		bad = "zombie-status";
	for (int i = 0; i < COUNT; i++) if (i != ZOMBIE) kill(pids[i], SIGKILL);
	report("EXIT ", bad);
	return bad ? 1 : 0;
}
