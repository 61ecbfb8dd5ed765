/* clonevm WORKDIR
 * A parent and a child cloned with CLONE_VM | CLONE_SIGHAND but not as a thread: two processes with one address
 * space and one table of signal handlers, which CriuPS refuses to checkpoint. Both sleep. Writes WORKDIR/ready. */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "selfcheck.h"

static char stack[64 * 1024];

static int sleeper(void *unused)
{
	(void)unused;
	for (;;) pause();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || chdir(argv[1]) != 0) return 2;
	if (clone(sleeper, stack + sizeof(stack), CLONE_VM | CLONE_SIGHAND | SIGCHLD, NULL) < 0) return 1;
	announce_ready(getpid());
	for (;;) pause();
}
