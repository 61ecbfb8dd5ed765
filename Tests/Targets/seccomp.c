/* seccomp WORKDIR
 * Seccomp filters that must come back after a restore, per thread and in order. With no_new_privs set, the main
 * thread installs three filters: getppid fails with EPERM; prctl(PR_GET_NAME) fails with EPERM (so a dump or
 * restore that injects prctl calls must have the filters suspended); and, newest, with SECCOMP_FILTER_FLAG_LOG,
 * getppid fails with ENOTSUP — of two filters with the same action the newest wins, so this proves the order.
 * A worker thread, created after the first two filters, adds one of its own: getpgrp fails with EACCES in that
 * thread only (and its getppid still fails with EPERM). On SIGUSR1 the main thread checks its own calls, asks the worker to check its
 * own, and appends "OK pid=P" or "CORRUPT <what> pid=P" to WORKDIR/seccomp.log. Writes WORKDIR/ready. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "selfcheck.h"

static volatile sig_atomic_t check_requested;
static volatile int worker_result = -1, worker_go;
static void on_usr1(int s) { (void)s; check_requested = 1; }

/* A filter that makes one system call (optionally only with a given first argument) fail with an errno. */
static int deny(int nr, int errno_value, long first_arg, int flags)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)first_arg, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | errno_value),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	if (first_arg < 0) code[3] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JA, 0, 0, 0);
	struct sock_fprog prog = { sizeof(code) / sizeof(code[0]), code };
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

static int fails_with(long result, int want) { return result == -1 && errno == want; }

static const char *check_main(void)
{
	char name[16];
	if (!fails_with(prctl(PR_GET_NAME, name), EPERM)) return "main-prctl-filter";
	if (!fails_with(syscall(SYS_getppid), ENOTSUP)) return "main-getppid-filter";
	if (syscall(SYS_getpgrp) < 0) return "main-has-worker-filter";
	return NULL;
}

static void *worker(void *arg)
{
	(void)arg;
	deny(SYS_getpgrp, EACCES, -1, 0);
	for (;;) {
		while (!worker_go) usleep(1000);
		char name[16];
		int ok = fails_with(syscall(SYS_getpgrp), EACCES) && fails_with(prctl(PR_GET_NAME, name), EPERM)
			 && fails_with(syscall(SYS_getppid), EPERM);
		worker_result = ok;
		worker_go = 0;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[1])) { perror("chdir"); return 1; }
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (deny(SYS_getppid, EPERM, -1, 0) || deny(SYS_prctl, EPERM, PR_GET_NAME, 0)) { perror("seccomp"); return 1; }
	pthread_t thread;
	pthread_create(&thread, NULL, worker, NULL);
	if (deny(SYS_getppid, ENOTSUP, -1, SECCOMP_FILTER_FLAG_LOG)) { perror("seccomp"); return 1; }
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	usleep(20000);
	announce_ready(getpid());
	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		const char *bad = check_main();
		if (!bad) {
			worker_result = -1;
			worker_go = 1;
			while (worker_result < 0) usleep(1000);
			if (!worker_result) bad = "worker-filters";
		}
		FILE *log = fopen("seccomp.log", "a");
		if (bad) fprintf(log, "CORRUPT %s pid=%d\n", bad, getpid());
		else fprintf(log, "OK pid=%d\n", getpid());
		fclose(log);
	}
}
