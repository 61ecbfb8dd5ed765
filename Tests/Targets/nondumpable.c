/* nondumpable: a process that is not dumpable (prctl(PR_SET_DUMPABLE, 0)), as programs that guard secrets make
 * themselves, and as set-user-ID programs are: its /proc/PID files that only the owner may open (fd, map_files,
 * mem) then belong to root. Writes ./ready with its pid once it is not dumpable, then waits for a signal. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "selfcheck.h"

int main(void)
{
	if (prctl(PR_SET_DUMPABLE, 0) != 0) { perror("prctl"); return 1; }
	announce_ready(getpid());
	for (;;)
		pause();
}
