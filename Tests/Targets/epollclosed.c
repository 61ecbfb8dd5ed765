/* epollclosed WORKDIR
 * An epoll instance whose registrations outlived the descriptor numbers they were added under (the kernel keeps a
 * registration as long as its file lives), checked after a restore. All are edge-triggered, data 0xA to 0xD:
 *   A - a pipe's read end added as fd 20 (NA), then kept as another number (dup) and 20 closed;
 *   B - a pipe's read end added as fd 21 (NB), then closed here: only the child holds it;
 *   C - a pipe's read end added as fd 22 (NC), kept as another number and 22 closed; then
 *   D - another pipe's read end put at 22, and added under it too: two registrations under 22.
 * SIGUSR1: checks that the registrations are the same (tfd, events, data in fdinfo), that NA and NB are closed and
 * NC is D's pipe, then writes a byte into each pipe in turn and expects exactly that registration's data from
 * epoll_wait. Appends "OK pid=P" or "CORRUPT <what> pid=P" to WORKDIR/epollclosed.log. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>
#include "selfcheck.h"

static int epfd, number_a, number_b, number_c, kept_a, kept_c, write_a, write_b, write_c, write_d;
static char registrations[1024];
static pid_t child;
static volatile sig_atomic_t check_requested;

static void on_usr1(int s) { (void)s; check_requested = 1; }

static void add(int fd, unsigned long data)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = data };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)) die("epoll_ctl");
}

/* A new pipe whose read end is at fd number; returns its write end. */
static int pipe_at(int number)
{
	int p[2];
	if (pipe(p) || dup2(p[0], number) != number) die("pipe");
	close(p[0]);
	return p[1];
}

static int by_text(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* The registrations in fdinfo, sorted (fdinfo lists them in the kernel's order of file addresses), without the target's
 * inode and position (a restored pipe is a new inode). */
static void read_registrations(char *out, size_t size)
{
	char path[64], line[256], entries[16][96];
	int count = 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f) && count < 16) {
		int tfd;
		unsigned events;
		unsigned long long data;
		if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &events, &data) == 3)
			snprintf(entries[count++], sizeof(entries[0]), "%d:%x:%llx ", tfd, events, data);
	}
	if (f) fclose(f);
	qsort(entries, count, sizeof(entries[0]), by_text);
	out[0] = 0;
	for (int i = 0; i < count; i++)
		strncat(out, entries[i], size - strlen(out) - 1);
}

/* Whether writing to fd signals exactly the registration with data. */
static int signals(int fd, unsigned long data)
{
	if (write(fd, "x", 1) != 1) return 0;
	struct epoll_event ev[4];
	int n = epoll_wait(epfd, ev, 4, 1000);
	return n == 1 && ev[0].data.u64 == data;
}

static int same_file(int a, int b)
{
	struct stat x, y;
	return fstat(a, &x) == 0 && fstat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

static const char *check(void)
{
	char now[1024];
	read_registrations(now, sizeof(now));
	if (strcmp(now, registrations)) return "the registrations changed";
	if (fcntl(number_a, F_GETFD) != -1 || fcntl(number_b, F_GETFD) != -1) return "a closed number is open";
	if (same_file(number_c, kept_c)) return "fd NC holds C's pipe";
	/* Unread bytes wait in the pipes: a registration made again at restore reports them once. */
	struct epoll_event ev[4];
	while (epoll_wait(epfd, ev, 4, 0) > 0)
		;
	if (!signals(write_a, 0xA)) return "A";
	if (!signals(write_b, 0xB)) return "B";
	if (!signals(write_c, 0xC)) return "C";
	if (!signals(write_d, 0xD)) return "D";
	return NULL;
}

static void report(const char *bad)
{
	FILE *log = fopen("epollclosed.log", "a");
	if (bad) fprintf(log, "CORRUPT %s pid=%d\n", bad, getpid());
	else fprintf(log, "OK pid=%d\n", getpid());
	fclose(log);
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[1])) die("chdir");
	epfd = epoll_create1(0);
	number_a = 20;
	write_a = pipe_at(number_a);
	add(number_a, 0xA);
	kept_a = dup(number_a);
	close(number_a);

	number_b = 21;
	write_b = pipe_at(number_b);
	add(number_b, 0xB);

	number_c = 22;
	write_c = pipe_at(number_c);
	add(number_c, 0xC);
	kept_c = dup(number_c);
	close(number_c);
	write_d = pipe_at(number_c);
	add(number_c, 0xD);

	child = fork();
	if (child < 0) die("fork");
	if (child == 0) {
		close(epfd);
		for (;;) pause();
	}
	close(number_b);
	read_registrations(registrations, sizeof(registrations));

	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);

	announce_ready(getpid());

	for (;;) {
		pause();
		if (check_requested) {
			check_requested = 0;
			report(check());
		}
	}
}
