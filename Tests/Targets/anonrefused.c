/* anonrefused MODE WORKDIR
 * Holds one descriptor CriuPS must refuse before freezing anything, then idles:
 *   MODE=io_uring       fd 3 is an io_uring instance (io_uring_setup(2) called through syscall());
 *   MODE=epoll-outside  fd 5 is an epoll watching a pipe's read end added as fd 3, since closed: only the parent, which
 *                       is not the process to checkpoint, holds that pipe.
 * WORKDIR/ready holds the pid (of the child for epoll-outside) once set-up is done. */
#define _GNU_SOURCE
#include <linux/io_uring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "selfcheck.h"

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: %s io_uring|epoll-outside WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[2])) die("chdir");
	for (int fd = 3; fd < 64; fd++) close(fd);
	if (strcmp(argv[1], "io_uring") == 0) {
		struct io_uring_params params;
		memset(&params, 0, sizeof(params));
		if (syscall(__NR_io_uring_setup, 4, &params) != 3) die("io_uring_setup");
	} else {
		int p[2];
		if (pipe(p) || p[0] != 3) die("pipe");
		if (fork() > 0)
			for (;;)
				pause(); /* the parent keeps the pipe */
		if (epoll_create1(0) != 5) die("epoll_create1");
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 1 };
		if (epoll_ctl(5, EPOLL_CTL_ADD, 3, &ev)) die("epoll_ctl");
		close(3);
		close(4);
	}
	announce_ready(getpid());
	for (;;)
		pause();
}
