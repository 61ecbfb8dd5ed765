/* seccompmodes tsync|strict WORKDIR
 * tsync:  two threads are started, then the main thread installs a filter with SECCOMP_FILTER_FLAG_TSYNC (getppid
 *         fails with EPERM), which the kernel gives every thread at once. On SIGUSR1 each of the three threads
 *         checks that getppid fails with EPERM and that getpgrp still works, and the main thread appends
 *         "OK pid=P" or "FAIL what pid=P" to WORKDIR/seccompmodes.log.
 * strict: a thread enters SECCOMP_MODE_STRICT (only read, write, exit and sigreturn allowed) and waits in read(2)
 *         on a pipe; the main thread sleeps. On SIGUSR1 the main thread checks that the thread is in mode 1
 *         (/proc/self/task/TID/status), sends it a byte, which it echoes through a second pipe (read and write
 *         work), then makes it call getpid, which strict mode answers by killing the thread alone: the main thread
 *         checks that it ends without writing again, and appends "OK pid=P" or "FAIL what pid=P".
 * WORKDIR/ready holds the pid once set-up is done. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "selfcheck.h"

static volatile sig_atomic_t check_requested;
static volatile int go[2], result[2] = { -1, -1 };
static int strict_pipe[2], reply_pipe[2];
static volatile pid_t strict_tid;

static void on_usr1(int s) { (void)s; check_requested = 1; }

/* 0 when this thread's getppid fails with EPERM and its getpgrp works. */
static int filtered_here(void)
{
	errno = 0;
	long ppid = syscall(SYS_getppid);
	int ppid_errno = errno;
	return ppid == -1 && ppid_errno == EPERM && syscall(SYS_getpgrp) > 0 ? 0 : 1;
}

static void *worker(void *arg)
{
	int me = (int)(long)arg;
	for (;;) {
		while (!go[me]) usleep(10000);
		go[me] = 0;
		result[me] = filtered_here();
	}
	return NULL;
}

static void *strict_thread(void *arg)
{
	(void)arg;
	char byte;
	strict_tid = (pid_t)syscall(SYS_gettid);
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) != 0) return NULL;
	while (read(strict_pipe[0], &byte, 1) == 1) {
		(void)!write(reply_pipe[1], &byte, 1);
		if (byte == 'k') {
			syscall(SYS_getpid); /* forbidden: strict mode kills this thread here */
			(void)!write(reply_pipe[1], "alive", 5);
		}
	}
	syscall(SYS_exit, 0);
	return NULL;
}

/* Empty when the strict thread is in mode 1, echoes a byte and is killed by a forbidden call; else what failed. */
static const char *check_strict(void)
{
	char path[64], line[256], byte = 0;
	int mode = -1;
	snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)strict_tid);
	FILE *status = fopen(path, "r");
	if (!status) return "the strict thread is gone";
	while (fgets(line, sizeof line, status)) sscanf(line, "Seccomp: %d", &mode);
	fclose(status);
	if (mode != 1) return "the thread is not in strict mode";
	struct pollfd reply = { .fd = reply_pipe[0], .events = POLLIN };
	if (write(strict_pipe[1], "k", 1) != 1 || poll(&reply, 1, 10000) != 1 || read(reply_pipe[0], &byte, 1) != 1 || byte != 'k')
		return "the strict thread does not echo";
	for (int waited = 0; access(path, F_OK) == 0 && waited < 1000; waited++) usleep(10000);
	if (access(path, F_OK) == 0) return "the strict thread outlived a forbidden call";
	if (poll(&reply, 1, 0) == 1) return "the strict thread made a forbidden call and went on";
	return "";
}

int main(int argc, char **argv)
{
	if (argc != 3 || chdir(argv[2]) != 0) die("usage: seccompmodes tsync|strict WORKDIR");
	FILE *log = fopen("seccompmodes.log", "a");
	if (!log) die("log");
	setvbuf(log, NULL, _IOLBF, 0);
	signal(SIGUSR1, on_usr1);
	if (strcmp(argv[1], "strict") == 0) {
		pthread_t thread;
		if (pipe(strict_pipe) != 0 || pipe(reply_pipe) != 0 || pthread_create(&thread, NULL, strict_thread, NULL) != 0) die("strict thread");
		usleep(100000);
		announce_ready(getpid());
		for (;;) {
			pause();
			if (!check_requested) continue;
			check_requested = 0;
			const char *failed = check_strict();
			if (*failed) fprintf(log, "FAIL %s pid=%d\n", failed, getpid());
			else fprintf(log, "OK pid=%d\n", getpid());
		}
	}
	pthread_t threads[2];
	for (long i = 0; i < 2; i++)
		if (pthread_create(&threads[i], NULL, worker, (void *)i) != 0) die("pthread_create");
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog program = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("PR_SET_NO_NEW_PRIVS");
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &program) != 0) die("seccomp(TSYNC)");
	announce_ready(getpid());
	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		const char *failed = filtered_here() ? "main thread not filtered" : NULL;
		for (int i = 0; i < 2 && !failed; i++) {
			result[i] = -1;
			go[i] = 1;
			for (int waited = 0; result[i] == -1 && waited < 500; waited++) usleep(10000);
			if (result[i] != 0) failed = i == 0 ? "thread 1 not filtered" : "thread 2 not filtered";
		}
		if (failed) fprintf(log, "FAIL %s pid=%d\n", failed, getpid());
		else fprintf(log, "OK pid=%d\n", getpid());
	}
}
