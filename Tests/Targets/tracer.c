/* tracer PID
 * Seizes PID with ptrace and stays its tracer until killed, passing every signal on as a debugger or strace
 * would, so that tests can show how CriuPS treats a process someone else already traces. Writes ./ready
 * once attached. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s PID\n", argv[0]); return 2; }
	pid_t pid = atoi(argv[1]);
	if (ptrace(PTRACE_SEIZE, pid, 0, 0)) { perror("ptrace"); return 1; }
	FILE *ready = fopen("ready", "w");
	fprintf(ready, "%d\n", getpid());
	fclose(ready);
	int status;
	while (waitpid(pid, &status, __WALL) == pid) {
		if (WIFEXITED(status) || WIFSIGNALED(status)) return 0;
		int sig = WIFSTOPPED(status) && (status >> 16) == 0 ? WSTOPSIG(status) : 0;
		ptrace(PTRACE_CONT, pid, 0, sig);
	}
	return 0;
}
