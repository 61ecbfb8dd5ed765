/* launch WORKDIR PROGRAM [ARGS...]
 * Starts PROGRAM in a session of its own, detached from the caller, with a small reaper process as its
 * parent that collects it when it ends (so that a checkpointed and killed target does not linger as a zombie
 * and its PID is free for the restore at once). Returns as soon as PROGRAM is started; stdio go to
 * /dev/null and the working directory is WORKDIR.
 * A target that ends before it wrote WORKDIR/ready failed its set-up with nowhere to say why (its stderr is
 * /dev/null): the reaper then writes how it ended to WORKDIR/launch.log, which Start-TestTarget shows.
 * PROGRAM starts with every signal unblocked and at its default action: a mask or an ignored signal of the
 * tester's thread that started launch would otherwise reach it through fork and exec. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void detach_stdio(void)
{
	int null = open("/dev/null", O_RDWR);
	dup2(null, 0); dup2(null, 1); dup2(null, 2);
	if (null > 2) close(null);
	for (int fd = 3; fd < 1024; fd++) close(fd);
}

/* CRIUPS_LAUNCH_TAG, when the caller sets one, ends the line: it tells this launch's note from that of an earlier
 * target in the same directory that ended later, so that the caller can stop waiting as soon as its own target ended. */
static char tag[80];

static void note(const char *program, const char *what)
{
	FILE *log = fopen("launch.log", "a");
	if (!log) return;
	fprintf(log, "%s %s%s%s\n", program, what, tag[0] ? " " : "", tag);
	fclose(log);
}

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: %s WORKDIR PROGRAM [ARGS...]\n", argv[0]); return 2; }
	if (chdir(argv[1])) { perror("chdir"); return 1; }
	const char *caller_tag = getenv("CRIUPS_LAUNCH_TAG");
	if (caller_tag) snprintf(tag, sizeof(tag), "[%s]", caller_tag);
	unsetenv("CRIUPS_LAUNCH_TAG");
	pid_t reaper = fork();
	if (reaper < 0) { perror("fork"); return 1; }
	if (reaper > 0) return 0;

	setsid();
	detach_stdio();
	pid_t target = fork();
	if (target < 0) _exit(1);
	if (target == 0) {
		setsid();
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL); /* EINVAL for SIGKILL, SIGSTOP and the glibc-reserved ones: nothing to do */
		execv(argv[2], argv + 2);
		char what[160];
		snprintf(what, sizeof(what), "could not be started: %s", strerror(errno));
		note(argv[2], what);
		_exit(127);
	}
	int status;
	while (waitpid(target, &status, 0) < 0)
		;
	struct stat ready;
	if (stat("ready", &ready) != 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 127)) {
		char what[160];
		if (WIFEXITED(status)) snprintf(what, sizeof(what), "exited with status %d before it was ready", WEXITSTATUS(status));
		else snprintf(what, sizeof(what), "was killed by signal %d before it was ready", WTERMSIG(status));
		note(argv[2], what);
	}
	return 0;
}
