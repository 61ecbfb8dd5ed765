/* anonfds WORKDIR
 * A test target holding every kind of anonymous-inode file CriuPS saves, each with state of its own, that
 * verifies them after a checkpoint and restore:
 *   fd 4  eventfd, counter 5, EFD_NONBLOCK
 *   fd 5  eventfd, counter 3, EFD_SEMAPHORE (a read takes 1)
 *   fd 6  signalfd for SIGUSR2 (O_NONBLOCK); SIGUSR2 is blocked and pending
 *   fd 7  timerfd, CLOCK_MONOTONIC, every 50 ms from 50 ms on: its ticks keep coming
 *   fd 8  timerfd, CLOCK_REALTIME, TFD_TIMER_ABSTIME|TFD_TIMER_CANCEL_ON_SET, one shot 1000 s after set-up
 *   fd 9  timerfd, CLOCK_BOOTTIME, one shot after 1 ms, expired: one tick waits unread (O_NONBLOCK)
 *   fd 10 inotify (O_NONBLOCK): wd 2 on WORKDIR/watched (IN_CREATE|IN_DELETE), wd 3 on WORKDIR/watched-file
 *         (IN_MODIFY|IN_EXCL_UNLINK); wd 1 (on WORKDIR) was removed, so the wds are not simply 1 and 2
 *   fds 11/12 a pipe holding "ping", never read
 *   fd 13 epoll: fd 11 (EPOLLIN, data 0x1111111111), fd 4 (EPOLLIN|EPOLLET, data 0x2222), fd 7 (EPOLLIN,
 *         data 0x3333)
 *   fd 14 epoll (close-on-exec) holding the epoll at fd 13 (EPOLLIN, data 0x4444)
 * fd 3 is the log. On SIGUSR1 it checks everything, uses each file (reads the counters and puts them back, takes
 * SIGUSR2 from the signalfd and raises it again, reads the periodic timer, gets an IN_CREATE, IN_DELETE and
 * IN_MODIFY from the watches, waits on both epolls) and appends "OK ticks=N pid=P" (N: ticks the periodic timer
 * had for this read) or "CORRUPT what pid=P". WORKDIR/ready holds the pid once set-up is done. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

#define MS 1000000L

static volatile sig_atomic_t check_requested;
static char workdir[4096], watched_dir[4200], watched_file[4200];
static time_t realtime_deadline;
static unsigned long long last_ticks;
static int round_number;

static void on_usr1(int s) { (void)s; check_requested = 1; }

static void put_fd(int fd, int want)
{
	if (fd < 0) die("open");
	if (fd == want) return;
	if (dup2(fd, want) < 0) die("dup2");
	close(fd);
}

/* The value of "key" in /proc/self/fdinfo/FD (the rest of its first line), or "" when absent. */
static const char *fdinfo(int fd, const char *key)
{
	static char text[8192], value[512];
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int f = open(path, O_RDONLY);
	ssize_t n = f < 0 ? -1 : read(f, text, sizeof(text) - 1);
	if (f >= 0) close(f);
	text[n < 0 ? 0 : n] = 0;
	value[0] = 0;
	size_t len = strlen(key);
	for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, key, len) == 0 && line[len] == ':') {
			const char *v = line + len + 1;
			while (*v == ' ' || *v == '\t') v++;
			size_t i = 0;
			while (v[i] && v[i] != '\n' && i < sizeof(value) - 1) { value[i] = v[i]; i++; }
			value[i] = 0;
			break;
		}
	}
	return value;
}

/* Whether epoll EPFD's fdinfo has a registration of fd TFD with these events and data. */
static int has_registration(int epfd, int tfd, unsigned events, unsigned long long data)
{
	char path[64], text[8192];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	int f = open(path, O_RDONLY);
	ssize_t n = f < 0 ? -1 : read(f, text, sizeof(text) - 1);
	if (f >= 0) close(f);
	if (n <= 0) return 0;
	text[n] = 0;
	for (char *line = strstr(text, "tfd:"); line; line = strstr(line + 1, "tfd:")) {
		int fd; unsigned ev; unsigned long long d;
		if (sscanf(line, "tfd: %d events: %x data: %llx", &fd, &ev, &d) == 3 && fd == tfd && ev == events && d == data)
			return 1;
	}
	return 0;
}

/* How many lines of FD's fdinfo start with PREFIX. */
static int count_lines(int fd, const char *prefix)
{
	char path[64], text[8192];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int f = open(path, O_RDONLY);
	ssize_t n = f < 0 ? -1 : read(f, text, sizeof(text) - 1);
	if (f >= 0) close(f);
	if (n <= 0) return -1;
	text[n] = 0;
	int count = 0;
	size_t len = strlen(prefix);
	for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (strncmp(line, prefix, len) == 0) count++;
	return count;
}

static const char *check_eventfds(void)
{
	uint64_t v;
	if (!(fcntl(4, F_GETFL) & O_NONBLOCK)) return "eventfd-nonblock";
	if (strcmp(fdinfo(4, "eventfd-count"), "5") != 0) return "eventfd-count";
	if (strcmp(fdinfo(4, "eventfd-semaphore"), "0") != 0) return "eventfd-not-semaphore";
	if (read(4, &v, 8) != 8 || v != 5) return "eventfd-read";
	if (read(4, &v, 8) != -1 || errno != EAGAIN) return "eventfd-empty";
	v = 5;
	if (write(4, &v, 8) != 8) return "eventfd-write";
	if (fcntl(5, F_GETFL) & O_NONBLOCK) return "semaphore-blocking";
	if (strcmp(fdinfo(5, "eventfd-semaphore"), "1") != 0) return "semaphore-flag";
	if (strcmp(fdinfo(5, "eventfd-count"), "3") != 0) return "semaphore-count";
	if (read(5, &v, 8) != 8 || v != 1) return "semaphore-read";
	if (strcmp(fdinfo(5, "eventfd-count"), "2") != 0) return "semaphore-took-one";
	v = 1;
	if (write(5, &v, 8) != 8) return "semaphore-write";
	return NULL;
}

static const char *check_signalfd(void)
{
	if (!(fcntl(6, F_GETFL) & O_NONBLOCK)) return "signalfd-nonblock";
	if (strcmp(fdinfo(6, "sigmask"), "0000000000000800") != 0) return "signalfd-mask";
	sigset_t pending;
	sigpending(&pending);
	if (!sigismember(&pending, SIGUSR2)) return "sigusr2-not-pending";
	struct signalfd_siginfo info;
	if (read(6, &info, sizeof(info)) != sizeof(info) || info.ssi_signo != SIGUSR2) return "signalfd-read";
	if (read(6, &info, sizeof(info)) != -1 || errno != EAGAIN) return "signalfd-empty";
	raise(SIGUSR2); /* pending again for the next check and the next checkpoint */
	return NULL;
}

static const char *check_timerfds(void)
{
	struct itimerspec its;
	if (timerfd_gettime(7, &its) || its.it_interval.tv_sec != 0 || its.it_interval.tv_nsec != 50 * MS) return "periodic-interval";
	if (its.it_value.tv_sec != 0 || its.it_value.tv_nsec == 0 || its.it_value.tv_nsec > 50 * MS) return "periodic-value";
	if (read(7, &last_ticks, 8) != 8 || last_ticks < 1) return "periodic-read";
	if (strcmp(fdinfo(7, "clockid"), "1") != 0) return "periodic-clock";

	if (strcmp(fdinfo(8, "clockid"), "0") != 0) return "oneshot-clock";
	if (strcmp(fdinfo(8, "settime flags"), "03") != 0) return "oneshot-flags";
	if (timerfd_gettime(8, &its) || its.it_interval.tv_sec || its.it_interval.tv_nsec) return "oneshot-interval";
	long left = (long)(realtime_deadline - time(NULL));
	/* The time spent checkpointed is given back: up to a minute more than the deadline says is fine. */
	if (its.it_value.tv_sec < left - 2 || its.it_value.tv_sec > left + 60 || its.it_value.tv_sec < 900) return "oneshot-left";

	if (strcmp(fdinfo(9, "clockid"), "7") != 0) return "expired-clock";
	if (strcmp(fdinfo(9, "ticks"), "1") != 0) return "expired-ticks";
	struct pollfd p = { .fd = 9, .events = POLLIN };
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLIN)) return "expired-not-readable";
	if (timerfd_gettime(9, &its) || its.it_value.tv_sec || its.it_value.tv_nsec) return "expired-disarmed";
	return NULL;
}

/* Waits up to a second for one inotify event and checks it. */
static const char *expect_event(int wd, uint32_t mask, const char *name, const char *what)
{
	struct pollfd p = { .fd = 10, .events = POLLIN };
	if (poll(&p, 1, 1000) != 1) return what;
	char buf[sizeof(struct inotify_event) + NAME_MAX + 1] __attribute__((aligned(8)));
	ssize_t n = read(10, buf, sizeof(buf));
	if (n < (ssize_t)sizeof(struct inotify_event)) return what;
	struct inotify_event *e = (struct inotify_event *)buf;
	if (e->wd != wd || !(e->mask & mask)) return what;
	if (name && (e->len == 0 || strcmp(e->name, name) != 0)) return what;
	return NULL;
}

/* Whether inotify's fdinfo has a watch WD on inode INO with MASK. */
static int has_watch(int wd, ino_t ino, unsigned mask)
{
	char line_start[32], want_ino[40], want_mask[40];
	snprintf(line_start, sizeof(line_start), "inotify wd:%x ", wd);
	snprintf(want_ino, sizeof(want_ino), " ino:%lx ", (unsigned long)ino);
	snprintf(want_mask, sizeof(want_mask), " mask:%x ", mask);
	char text[8192];
	int f = open("/proc/self/fdinfo/10", O_RDONLY);
	ssize_t n = f < 0 ? -1 : read(f, text, sizeof(text) - 1);
	if (f >= 0) close(f);
	if (n <= 0) return 0;
	text[n] = 0;
	char *line = strstr(text, line_start);
	if (!line) return 0;
	char *end = strchr(line, '\n');
	if (end) *end = 0;
	return strstr(line, want_ino) && strstr(line, want_mask);
}

static const char *check_inotify(void)
{
	struct stat dir, file;
	if (!(fcntl(10, F_GETFL) & O_NONBLOCK)) return "inotify-nonblock";
	if (stat(watched_dir, &dir) || stat(watched_file, &file)) return "inotify-stat";
	if (!has_watch(2, dir.st_ino, IN_CREATE | IN_DELETE)) return "inotify-dir-watch";
	if (!has_watch(3, file.st_ino, IN_MODIFY | IN_EXCL_UNLINK)) return "inotify-file-watch";
	if (count_lines(10, "inotify wd:") != 2) return "inotify-watch-count";

	/* Events queued before this check (lost at a checkpoint, or made by the test) are not ours. */
	char drain[4096];
	while (read(10, drain, sizeof(drain)) > 0)
		;
	char name[32], created[4300];
	snprintf(name, sizeof(name), "new-%d", ++round_number);
	snprintf(created, sizeof(created), "%s/%s", watched_dir, name);
	int c = open(created, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (c < 0) return "inotify-create-file";
	close(c);
	const char *bad = expect_event(2, IN_CREATE, name, "inotify-in-create");
	if (bad) return bad;
	unlink(created);
	bad = expect_event(2, IN_DELETE, name, "inotify-in-delete");
	if (bad) return bad;
	int w = open(watched_file, O_WRONLY | O_APPEND);
	if (w < 0 || write(w, "x", 1) != 1) return "inotify-write-file";
	close(w);
	return expect_event(3, IN_MODIFY, NULL, "inotify-in-modify");
}

static const char *check_epolls(void)
{
	if (count_lines(13, "tfd:") != 3) return "epoll-count";
	if (!has_registration(13, 11, EPOLLIN | EPOLLERR | EPOLLHUP, 0x1111111111ull)) return "epoll-pipe";
	if (!has_registration(13, 4, EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLET, 0x2222)) return "epoll-eventfd-et";
	if (!has_registration(13, 7, EPOLLIN | EPOLLERR | EPOLLHUP, 0x3333)) return "epoll-timerfd";
	if (count_lines(14, "tfd:") != 1 || !has_registration(14, 13, EPOLLIN | EPOLLERR | EPOLLHUP, 0x4444)) return "epoll-nested";
	if (!(fcntl(14, F_GETFD) & FD_CLOEXEC) || (fcntl(13, F_GETFD) & FD_CLOEXEC)) return "epoll-cloexec";

	struct epoll_event ev[8];
	if (epoll_wait(14, ev, 8, 0) != 1 || ev[0].data.u64 != 0x4444) return "epoll-nested-wait";
	/* The pipe is readable (level-triggered) and the eventfd was just written to by check_eventfds (an edge). */
	int n = epoll_wait(13, ev, 8, 0), pipe_seen = 0, eventfd_seen = 0;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u64 == 0x1111111111ull && ev[i].events == EPOLLIN) pipe_seen = 1;
		else if (ev[i].data.u64 == 0x2222 && ev[i].events == EPOLLIN) eventfd_seen = 1;
		else if (ev[i].data.u64 != 0x3333) return "epoll-unknown-event";
	}
	if (!pipe_seen) return "epoll-wait-pipe";
	if (!eventfd_seen) return "epoll-wait-eventfd";
	/* Edge-triggered: nothing new happened to the eventfd since, so it is not reported again. */
	n = epoll_wait(13, ev, 8, 0);
	for (int i = 0; i < n; i++)
		if (ev[i].data.u64 == 0x2222) return "epoll-edge-repeated";
	return NULL;
}

static const char *check_all(void)
{
	const char *bad = check_eventfds();
	if (!bad) bad = check_signalfd();
	if (!bad) bad = check_timerfds();
	if (!bad) bad = check_inotify();
	if (!bad) bad = check_epolls();
	return bad;
}

static void report(const char *bad)
{
	char line[160];
	int n = bad ? snprintf(line, sizeof(line), "CORRUPT %s pid=%d\n", bad, getpid())
		    : snprintf(line, sizeof(line), "OK ticks=%llu pid=%d\n", last_ticks, getpid());
	if (write(3, line, n) != n) _exit(3);
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (!realpath(argv[1], workdir)) die("workdir");
	if (chdir(workdir)) die("chdir");
	snprintf(watched_dir, sizeof(watched_dir), "%s/watched", workdir);
	snprintf(watched_file, sizeof(watched_file), "%s/watched-file", workdir);
	mkdir(watched_dir, 0700);
	put_fd(open(watched_file, O_WRONLY | O_CREAT | O_TRUNC, 0600), 20);
	close(20);
	for (int fd = 3; fd < 64; fd++) close(fd);
	put_fd(open("anonfds.log", O_WRONLY | O_CREAT | O_APPEND, 0600), 3);

	put_fd(eventfd(5, EFD_NONBLOCK), 4);
	put_fd(eventfd(3, EFD_SEMAPHORE), 5);

	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, NULL);
	raise(SIGUSR2);
	put_fd(signalfd(-1, &usr2, SFD_NONBLOCK), 6);

	put_fd(timerfd_create(CLOCK_MONOTONIC, 0), 7);
	struct itimerspec periodic = { .it_interval = { 0, 50 * MS }, .it_value = { 0, 50 * MS } };
	if (timerfd_settime(7, 0, &periodic, NULL)) die("timerfd periodic");
	put_fd(timerfd_create(CLOCK_REALTIME, 0), 8);
	realtime_deadline = time(NULL) + 1000;
	struct itimerspec oneshot = { .it_value = { realtime_deadline, 0 } };
	if (timerfd_settime(8, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &oneshot, NULL)) die("timerfd oneshot");
	put_fd(timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK), 9);
	struct itimerspec soon = { .it_value = { 0, 1 * MS } };
	if (timerfd_settime(9, 0, &soon, NULL)) die("timerfd expired");

	put_fd(inotify_init1(IN_NONBLOCK), 10);
	int first = inotify_add_watch(10, workdir, IN_ATTRIB);
	if (first != 1) die("inotify wd 1");
	if (inotify_add_watch(10, watched_dir, IN_CREATE | IN_DELETE) != 2) die("inotify wd 2");
	inotify_rm_watch(10, first);
	if (inotify_add_watch(10, watched_file, IN_MODIFY | IN_EXCL_UNLINK) != 3) die("inotify wd 3");
	char drain[4096];
	while (read(10, drain, sizeof(drain)) > 0) /* the IN_IGNORED of wd 1 */
		;

	int p[2];
	if (pipe(p)) die("pipe");
	int r = dup(p[0]), w = dup(p[1]);
	close(p[0]); close(p[1]);
	put_fd(r, 11); put_fd(w, 12);
	if (write(12, "ping", 4) != 4) die("pipe write");

	put_fd(epoll_create1(0), 13);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x1111111111ull };
	if (epoll_ctl(13, EPOLL_CTL_ADD, 11, &ev)) die("epoll pipe");
	ev = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u64 = 0x2222 };
	if (epoll_ctl(13, EPOLL_CTL_ADD, 4, &ev)) die("epoll eventfd");
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 0x3333 };
	if (epoll_ctl(13, EPOLL_CTL_ADD, 7, &ev)) die("epoll timerfd");
	put_fd(epoll_create1(EPOLL_CLOEXEC), 14);
	fcntl(14, F_SETFD, FD_CLOEXEC);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 0x4444 };
	if (epoll_ctl(14, EPOLL_CTL_ADD, 13, &ev)) die("epoll nested");

	struct timespec settle = { 0, 5 * MS };
	nanosleep(&settle, NULL); /* the 1 ms timer expires */
	const char *bad = check_all();
	if (bad) { report(bad); return 1; }

	announce_ready(getpid());

	for (;;) {
		if (check_requested) {
			check_requested = 0;
			report(check_all());
		}
		pause();
	}
}
