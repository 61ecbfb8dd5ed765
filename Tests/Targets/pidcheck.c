/* pidcheck WORKDIR [CHILDREN]
 * A test target that checks its PIDs after a restore, in whatever PID namespace it runs.
 *
 * At start it notes getpid(), forks CHILDREN children (1 by default) that wait in pause(), notes their PIDs,
 * and writes WORKDIR/ready with its PID (as it sees it). Its log is WORKDIR/pidcheck.log.
 * On SIGUSR1 it checks that getpid() is the PID it noted, that the last PID of the NSpid line of
 * /proc/self/status (its PID in the namespace of /proc) is too, that each child still has its PID, answers kill(0)
 * and is its running child (waitid), and lists the processes /proc shows; it
 * appends "OK pid=P ppid=Q children=C1,C2 nspid=<NSpid fields> procs=<the PIDs in /proc, sorted>" or
 * "CORRUPT what" to the log. The children ignore SIGUSR1 (a namespace's init forwards signals to all).
 * On SIGTERM it logs "TERM pid=P" and exits with status 3 (its children die of the SIGTERM forwarded to them, or
 * of their parent-death signal). */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "selfcheck.h"

#define MAX_CHILDREN 8

static volatile sig_atomic_t check_requested, stop_requested;
static pid_t noted, children[MAX_CHILDREN];
static int nchildren;

static void on_usr1(int s) { (void)s; check_requested = 1; }
static void on_term(int s) { (void)s; stop_requested = 1; }
static void ignore(int s) { (void)s; }

static int compare(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* The NSpid fields of /proc/self/status ("4242 7" in a child namespace), and the last one. */
static int nspid(char *fields, size_t size)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	int last = -1;
	fields[0] = 0;
	while (f && fgets(line, sizeof line, f)) {
		if (strncmp(line, "NSpid:", 6) == 0) {
			char *p = line + 6, *end;
			while (*p == ' ' || *p == '\t') p++;
			p[strcspn(p, "\n")] = 0;
			snprintf(fields, size, "%s", p);
			for (char *word = strtok(p, " \t"); word; word = strtok(NULL, " \t")) last = (int)strtol(word, &end, 10);
		}
	}
	if (f) fclose(f);
	return last;
}

/* Whether PID is a child of ours that runs: waitid answers ECHILD for a process that is not our child, whatever
 * /proc shows (without a /proc of its own, a namespace's /proc is its parent namespace's). */
static int is_running_child(pid_t pid)
{
	siginfo_t info = { 0 };
	return waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0;
}

static void check(FILE *log)
{
	char fields[256], procs[1024] = "", kids[256] = "";
	int pids[512], count = 0;
	const char *problem = NULL;
	if (getpid() != noted) problem = "getpid";
	if (!problem && nspid(fields, sizeof fields) != noted) problem = "NSpid";
	for (int i = 0; i < nchildren && !problem; i++) {
		if (kill(children[i], 0) != 0) problem = "child gone";
		else if (!is_running_child(children[i])) problem = "not our running child";
		snprintf(kids + strlen(kids), sizeof kids - strlen(kids), "%s%d", i ? "," : "", children[i]);
	}
	DIR *proc = opendir("/proc");
	for (struct dirent *e; proc && (e = readdir(proc)) && count < 512;) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end == 0 && pid > 0) pids[count++] = (int)pid;
	}
	if (proc) closedir(proc);
	qsort(pids, count, sizeof pids[0], compare);
	for (int i = 0; i < count; i++) snprintf(procs + strlen(procs), sizeof procs - strlen(procs), "%s%d", i ? "," : "", pids[i]);
	if (problem) fprintf(log, "CORRUPT %s pid=%d noted=%d\n", problem, getpid(), noted);
	else fprintf(log, "OK pid=%d ppid=%d children=%s nspid=%s procs=%s\n", getpid(), getppid(), kids, fields, procs);
	fflush(log);
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR [CHILDREN]\n", argv[0]); return 2; }
	if (chdir(argv[1])) { perror("chdir"); return 1; }
	nchildren = argc > 2 ? atoi(argv[2]) : 1;
	if (nchildren < 0 || nchildren > MAX_CHILDREN) return 2;
	noted = getpid();
	signal(SIGUSR1, ignore);
	for (int i = 0; i < nchildren; i++) {
		pid_t child = fork();
		if (child < 0) { perror("fork"); return 1; }
		if (child == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;) pause();
		}
		children[i] = child;
	}
	FILE *log = fopen("pidcheck.log", "a");
	if (!log) return 1;
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	/* Held but while waiting: a signal that comes during a check is taken at the next wait, not lost. */
	sigset_t held, waiting;
	sigemptyset(&held);
	sigaddset(&held, SIGUSR1);
	sigaddset(&held, SIGTERM);
	sigprocmask(SIG_BLOCK, &held, &waiting);
	announce_ready(noted);
	for (;;) {
		sigsuspend(&waiting);
		if (check_requested) { check_requested = 0; check(log); }
		if (stop_requested) { fprintf(log, "TERM pid=%d\n", getpid()); fflush(log); return 3; }
	}
}
