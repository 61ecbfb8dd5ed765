/* launch WORKDIR PROGRAM [ARGS...]
 * Starts PROGRAM in a session of its own, detached from the caller, with a small reaper process as its
 * parent that collects it when it ends (so that a checkpointed and killed target does not linger as a zombie
 * and its PID is free for the restore at once). Returns as soon as PROGRAM is started; stdio go to
 * /dev/null and the working directory is WORKDIR. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void detach_stdio(void)
{
	int null = open("/dev/null", O_RDWR);
	dup2(null, 0); dup2(null, 1); dup2(null, 2);
	if (null > 2) close(null);
	for (int fd = 3; fd < 1024; fd++) close(fd);
}

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: %s WORKDIR PROGRAM [ARGS...]\n", argv[0]); return 2; }
	if (chdir(argv[1])) { perror("chdir"); return 1; }
	pid_t reaper = fork();
	if (reaper < 0) { perror("fork"); return 1; }
	if (reaper > 0) return 0;

	setsid();
	detach_stdio();
	pid_t target = fork();
	if (target < 0) _exit(1);
	if (target == 0) {
		setsid();
		execv(argv[2], argv + 2);
		_exit(127);
	}
	while (waitpid(target, NULL, 0) < 0)
		;
	return 0;
}
