/* What the self-checking targets share: how they say they are set up, and how they give up.
 * Included by each target's single .c file (Tests/Pester/TestHelpers.psm1 builds them one by one with gcc). */
#ifndef CRIUPS_SELFCHECK_H
#define CRIUPS_SELFCHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

static inline void die(const char *what) { perror(what); exit(1); }

/* Writes PID to WORKDIR/ready (the current directory), whole or not at all: Start-TestTarget reads it once it exists. */
static inline void announce_ready(pid_t pid)
{
	FILE *file = fopen("ready.tmp", "w");
	if (!file) die("ready");
	fprintf(file, "%d\n", (int)pid);
	fclose(file);
	rename("ready.tmp", "ready");
}
#endif
