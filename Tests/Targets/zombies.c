/* zombies WORKDIR
 * A tree full of zombies of every shape, that checks itself after a restore. The root (a session and group of its
 * own, a child subreaper) keeps, unreaped:
 *   exited       - exited with status 42, in the root's group
 *   killed       - killed by SIGKILL
 *   terminated   - killed by SIGTERM (default action)
 *   quit         - killed by SIGQUIT (a core-dumping signal; RLIMIT_CORE is 0, so no core is written)
 *   own-group    - made a group of its own and exited (7): the last of its group
 *   in-group     - joined the group of keeper (a living child) and exited (3)
 *   leaderless   - in the group of a process the root has reaped since, exited (5): the last of that group
 *   own-session  - made a session of its own and exited (9): the last of its session
 *   orphan       - forked by a session leader the root has reaped since, so the root's child by the subreaper
 *                  rule, in that leaderless session, exited (13)
 *   deep         - the child of keeper (which does not reap it), exited (11)
 * and living ones: keeper (a group of its own) and member (in the group of the reaped leader, with leaderless).
 * On SIGUSR1 the root checks that every process has its saved PID, parent, group, session and state, and that it got
 * no SIGCHLD since the set-up (every child had ended by then; the restore must not send one), and appends
 * "OK zombies=N" or "CORRUPT <what>" to WORKDIR/zombies.log; on SIGTERM it checks once more, reaps every zombie and
 * checks its status (keeper reaps deep and reports its status in its own exit code), kills the living and logs
 * "EXIT OK" or "EXIT CORRUPT <what>". WORKDIR/ready holds the root's pid once the layout is in place. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { EXITED, KILLED, TERMINATED, QUIT, OWN_GROUP, IN_GROUP, LEADERLESS, OWN_SESSION, ORPHAN, DEEP, KEEPER, MEMBER, COUNT };
static const char *names[COUNT] = { "exited", "killed", "terminated", "quit", "own-group", "in-group", "leaderless",
	"own-session", "orphan", "deep", "keeper", "member" };
#define ZOMBIES KEEPER /* the processes before KEEPER are zombies */

struct layout { pid_t pid, ppid, pgid, sid; };
static struct layout saved[COUNT];
static volatile sig_atomic_t check_requested, stop_requested, child_signals;
static void on_usr1(int s) { (void)s; check_requested = 1; }
static void on_chld(int s) { (void)s; child_signals++; }
static void on_term(int s) { (void)s; stop_requested = 1; }

/* Reads state, parent, group and session of a process from /proc/PID/stat. */
static int read_stat(pid_t pid, char *state, struct layout *out)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f) return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *close = strrchr(buf, ')');
	if (!close) return -1;
	out->pid = pid;
	return sscanf(close + 2, "%c %d %d %d", state, &out->ppid, &out->pgid, &out->sid) == 4 ? 0 : -1;
}

/* Gives up on a set-up that does not come about, saying what and why, instead of hanging without a word. */
static void setup_stuck(pid_t pid, const char *what)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *status = fopen(path, "r"), *log = fopen("zombies.log", "a");
	if (log) {
		fprintf(log, "SETUP %d %s after 8 s:", pid, what);
		while (status && fgets(line, sizeof(line), status))
			if (!strncmp(line, "State", 5) || !strncmp(line, "Sig", 3) || !strncmp(line, "PPid", 4)) {
				line[strcspn(line, "\n")] = 0;
				fprintf(log, " %s", line);
			}
		fprintf(log, "\n");
		fclose(log);
	}
	if (status) fclose(status);
	exit(1);
}

/* Start-TestTarget waits 15 s for the ready file: a set-up stuck for 8 s says why before that. */
static time_t setup_deadline(void) { return time(NULL) + 8; }

static void wait_state(pid_t pid, char want)
{
	struct layout l;
	char state = 0;
	for (time_t deadline = setup_deadline(); read_stat(pid, &state, &l) == 0 && state != want; usleep(1000))
		if (time(NULL) > deadline) setup_stuck(pid, want == 'Z' ? "did not end" : "did not reach its state");
}

static void pipe_wait(int fd) { char c; if (read(fd, &c, 1) != 1) _exit(100); }
static void pipe_signal(int fd) { char c = 'x'; if (write(fd, &c, 1) != 1) _exit(101); }

/* keeper: a group of its own; forks deep (which exits 11) and never reaps it until SIGTERM, then exits with 0 when
 * deep's status was 11, else 1. */
static void keeper(int ready)
{
	setpgid(0, 0);
	pid_t deep = fork();
	if (deep == 0) _exit(11);
	if (write(ready, &deep, sizeof(deep)) != sizeof(deep)) _exit(1);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sig;
	sigwait(&set, &sig);
	int status;
	_exit(waitpid(deep, &status, 0) == deep && WIFEXITED(status) && WEXITSTATUS(status) == 11 ? 0 : 1);
}

static const char *check_layout(void)
{
	static char what[128];
	if (child_signals) return "spurious-sigchld";
	for (int i = 0; i < COUNT; i++) {
		struct layout now;
		char state;
		if (read_stat(saved[i].pid, &state, &now)) { snprintf(what, sizeof(what), "%s-missing", names[i]); return what; }
		if ((state == 'Z') != (i < ZOMBIES)) { snprintf(what, sizeof(what), "%s-state-%c", names[i], state); return what; }
		if (now.ppid != saved[i].ppid || now.pgid != saved[i].pgid || now.sid != saved[i].sid) {
			snprintf(what, sizeof(what), "%s-layout-ppid-%d-pgid-%d-sid-%d-was-%d-%d-%d", names[i], now.ppid, now.pgid, now.sid,
				saved[i].ppid, saved[i].pgid, saved[i].sid);
			return what;
		}
	}
	return NULL;
}

/* The wait status each zombie must leave. */
static int expected_status(int i, int *status)
{
	switch (i) {
	case EXITED: *status = 42 << 8; return 1;
	case KILLED: *status = SIGKILL; return 1;
	case TERMINATED: *status = SIGTERM; return 1;
	case QUIT: *status = SIGQUIT; return 1;
	case OWN_GROUP: *status = 7 << 8; return 1;
	case IN_GROUP: *status = 3 << 8; return 1;
	case LEADERLESS: *status = 5 << 8; return 1;
	case OWN_SESSION: *status = 9 << 8; return 1;
	case ORPHAN: *status = 13 << 8; return 1;
	default: return 0; /* deep is keeper's to reap */
	}
}

static const char *reap_all(void)
{
	static char what[128];
	for (int i = 0; i < ZOMBIES; i++) {
		int want, status;
		if (!expected_status(i, &want)) continue;
		if (waitpid(saved[i].pid, &status, WNOHANG) != saved[i].pid) { snprintf(what, sizeof(what), "%s-not-reaped", names[i]); return what; }
		if (status != want) { snprintf(what, sizeof(what), "%s-status-%#x-not-%#x", names[i], status, want); return what; }
	}
	kill(saved[KEEPER].pid, SIGTERM);
	int status;
	if (waitpid(saved[KEEPER].pid, &status, 0) != saved[KEEPER].pid || !WIFEXITED(status) || WEXITSTATUS(status)) return "deep-status";
	kill(saved[MEMBER].pid, SIGKILL);
	waitpid(saved[MEMBER].pid, &status, 0);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[1])) return 1;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });
	pid_t pids[COUNT];
	int gate[COUNT][2]; /* a process waits on its gate until the root has put it where it belongs */
	for (int i = 0; i < COUNT; i++) if (pipe(gate[i])) return 1;
	int leader_gate[2];
	if (pipe(leader_gate)) return 1;

	if (!(pids[EXITED] = fork())) _exit(42);
	if (!(pids[KILLED] = fork())) for (;;) pause();
	kill(pids[KILLED], SIGKILL);
	if (!(pids[TERMINATED] = fork())) for (;;) pause();
	kill(pids[TERMINATED], SIGTERM);
	if (!(pids[QUIT] = fork())) for (;;) pause();
	kill(pids[QUIT], SIGQUIT);
	if (!(pids[OWN_GROUP] = fork())) { setpgid(0, 0); _exit(7); }

	int keeper_pipe[2];
	if (pipe(keeper_pipe)) return 1;
	if (!(pids[KEEPER] = fork())) keeper(keeper_pipe[1]);
	setpgid(pids[KEEPER], pids[KEEPER]);
	if (read(keeper_pipe[0], &pids[DEEP], sizeof(pid_t)) != sizeof(pid_t)) return 1;
	if (!(pids[IN_GROUP] = fork())) { pipe_wait(gate[IN_GROUP][0]); _exit(3); }
	if (setpgid(pids[IN_GROUP], pids[KEEPER])) { perror("setpgid in-group"); return 1; }
	pipe_signal(gate[IN_GROUP][1]);

	/* A group whose leader the root reaps: leaderless and member stay in it. */
	pid_t leader = fork();
	if (!leader) { setpgid(0, 0); pipe_wait(leader_gate[0]); _exit(0); }
	setpgid(leader, leader);
	if (!(pids[LEADERLESS] = fork())) { pipe_wait(gate[LEADERLESS][0]); _exit(5); }
	if (!(pids[MEMBER] = fork())) for (;;) pause();
	if (setpgid(pids[LEADERLESS], leader) || setpgid(pids[MEMBER], leader)) { perror("setpgid leaderless"); return 1; }
	pipe_signal(leader_gate[1]);
	waitpid(leader, NULL, 0);
	pipe_signal(gate[LEADERLESS][1]);

	if (!(pids[OWN_SESSION] = fork())) { setsid(); _exit(9); }

	/* A session whose leader the root reaps: its child becomes the root's (subreaper) and exits in that session. */
	int orphan_pipe[2];
	if (pipe(orphan_pipe)) return 1;
	pid_t session_leader = fork();
	if (!session_leader) {
		setsid();
		pid_t orphan = fork();
		if (!orphan) { pipe_wait(gate[ORPHAN][0]); _exit(13); }
		if (write(orphan_pipe[1], &orphan, sizeof(orphan)) != sizeof(orphan)) _exit(1);
		_exit(0);
	}
	if (read(orphan_pipe[0], &pids[ORPHAN], sizeof(pid_t)) != sizeof(pid_t)) return 1;
	waitpid(session_leader, NULL, 0);
	/* Once reparented to the root, let it exit. */
	struct layout l;
	char state;
	for (time_t deadline = setup_deadline(); read_stat(pids[ORPHAN], &state, &l) == 0 && l.ppid != getpid(); usleep(1000))
		if (time(NULL) > deadline) setup_stuck(pids[ORPHAN], "was not reparented to the root");
	pipe_signal(gate[ORPHAN][1]);

	for (int i = 0; i < COUNT; i++) { close(gate[i][0]); close(gate[i][1]); }
	close(leader_gate[0]); close(leader_gate[1]); close(keeper_pipe[0]); close(keeper_pipe[1]);
	close(orphan_pipe[0]); close(orphan_pipe[1]);
	for (int i = 0; i < ZOMBIES; i++) wait_state(pids[i], 'Z');
	for (int i = 0; i < COUNT; i++) {
		char state;
		if (read_stat(pids[i], &state, &saved[i])) return 1;
	}
	/* What the layout must be, whatever /proc said: a few spot checks that the set-up did what it says. */
	if (saved[LEADERLESS].pgid != leader || saved[ORPHAN].sid != session_leader || saved[ORPHAN].ppid != getpid()
	    || saved[IN_GROUP].pgid != pids[KEEPER] || saved[OWN_SESSION].sid != pids[OWN_SESSION] || saved[DEEP].ppid != pids[KEEPER]) {
		fprintf(stderr, "layout not as planned\n");
		return 1;
	}

	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	/* Every child ended before this: a SIGCHLD from now on is one the restore made up. */
	sa.sa_handler = on_chld;
	sigaction(SIGCHLD, &sa, NULL);
	FILE *ready = fopen("ready", "w");
	fprintf(ready, "%d\n", getpid());
	fclose(ready);

	for (;;) {
		pause();
		if (check_requested) {
			check_requested = 0;
			const char *bad = check_layout();
			FILE *log = fopen("zombies.log", "a");
			if (bad) fprintf(log, "CORRUPT %s\n", bad);
			else fprintf(log, "OK zombies=%d\n", ZOMBIES);
			fclose(log);
		}
		if (stop_requested) {
			const char *bad = check_layout();
			if (!bad) bad = reap_all();
			FILE *log = fopen("zombies.log", "a");
			if (bad) fprintf(log, "EXIT CORRUPT %s\n", bad);
			else fprintf(log, "EXIT OK\n");
			fclose(log);
			return bad ? 1 : 0;
		}
	}
}
