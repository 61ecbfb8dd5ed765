/* vforkstop: a parent that cannot be frozen for a while. It vforks a child that stops itself (SIGSTOP) before it
 * exits: until the child is continued, the parent waits uninterruptibly in the kernel (state D). Writes ./ready
 * with its pid before the vfork, and ./done once the child has ended; then sleeps. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void write_file(const char *name, int value)
{
	char temporary[64];
	snprintf(temporary, sizeof(temporary), "%s.tmp", name);
	FILE *file = fopen(temporary, "w");
	fprintf(file, "%d\n", value);
	fclose(file);
	rename(temporary, name);
}

int main(void)
{
	write_file("ready", getpid());
	pid_t child = vfork();
	if (child == 0) {
		kill(getpid(), SIGSTOP);
		_exit(0);
	}
	waitpid(child, NULL, 0);
	write_file("done", getpid());
	for (;;)
		pause();
}
