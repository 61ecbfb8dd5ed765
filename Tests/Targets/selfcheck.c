/* selfcheck MODE WORKDIR
 * A test target that verifies its own state after a checkpoint and restore.
 *
 * It sets up, then keeps unchanged (or changes predictably):
 *   memory  - 24 MiB of anonymous memory filled with an xorshift stream, a heap block, a pattern on the
 *             stack, a read-only page, a PROT_NONE page, a private file mapping with one page modified
 *             (copy-on-write), a shared file mapping, and a MAP_GROWSDOWN-free stack as usual;
 *   files   - fd 3 the append-mode log, fd 4 a data file open at offset 4096, fd 5 a directory,
 *             fd 6 /dev/null, fd 7 /dev/zero (close-on-exec), fds 8/9 a pipe holding 11 unread bytes,
 *             fds 10/11 a second pipe used by MODE=read;
 *   signals - handlers for SIGUSR1 (SA_ONSTACK|SA_RESTART), SIGTERM, SIGRTMIN+1 (SA_SIGINFO); SIGHUP
 *             ignored; SIGUSR2 and SIGRTMIN+2 blocked and pending (SIGRTMIN+2 queued with value 42);
 *             an alternate signal stack; an ITIMER_REAL timer armed far in the future (SIGALRM ignored);
 *   process - umask 027, cwd = WORKDIR, RLIMIT_NOFILE soft limit 512, RLIMIT_CORE 0/unlimited, nice 5,
 *             registered for private expedited membarrier(2),
 *             name "selfcheck"; the stack must still grow on demand.
 *
 * MODE=sleep: the main loop sleeps in nanosleep (so a checkpoint interrupts a sleep);
 * MODE=read:  the main loop blocks in read() on the pipe at fd 10, woken by the SIGUSR1 handler writing to fd 11
 *             (so a checkpoint interrupts a blocking read that must restart);
 * MODE=pause: the main loop waits for a signal in pause() (restarted after a stop without a handler).
 * Every loop increments a counter. On SIGUSR1 it re-checks everything and appends one line
 * "OK counter=N pid=P" or "CORRUPT what pid=P" to the log. On SIGTERM it checks once more, consumes the
 * pending signals (the queued value must be 42), logs "EXIT OK"/"EXIT CORRUPT what" and exits.
 * WORKDIR/ready holds the pid once set-up is done. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/membarrier.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

#define ANON_SIZE (24u << 20)
#define PAGE 4096

static volatile sig_atomic_t check_requested, stop_requested, rt_value_seen = -1;
static uint64_t *anon;
static char *heap_block, *ro_page, *none_page, *priv_map, *shared_map;
static long counter;
static char altstack[64 * 1024];
static char workdir[4096];
static int read_mode;

static uint64_t xs(uint64_t *s) { uint64_t x = *s; x ^= x << 13; x ^= x >> 7; x ^= x << 17; return *s = x; }

static void on_usr1(int s) { (void)s; check_requested = 1; if (read_mode) { char c = 'w'; (void)!write(11, &c, 1); } }
static void on_term(int s) { (void)s; stop_requested = 1; if (read_mode) { char c = 't'; (void)!write(11, &c, 1); } }
static void on_rt(int s, siginfo_t *info, void *ctx) { (void)s; (void)ctx; rt_value_seen = info->si_value.sival_int; }

static const char *check_memory(void)
{
	uint64_t s = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < ANON_SIZE / 8; i++)
		if (anon[i] != xs(&s)) return "anon";
	for (int i = 0; i < 100000; i++)
		if (heap_block[i] != (char)(i * 13)) return "heap";
	for (int i = 0; i < PAGE; i++)
		if (ro_page[i] != (char)(i * 7)) return "ro";
	if (strcmp(priv_map, "copy-on-write page") != 0) return "private-map-cow";
	if (strcmp(priv_map + PAGE, "file page 1") != 0) return "private-map-file";
	if (strcmp(shared_map, "shared mapping") != 0) return "shared-map";
	/* A write through the shared mapping must reach the file: a private copy would keep it. */
	static unsigned checks;
	char stamp[32] = "", seen[32] = "";
	snprintf(stamp, sizeof(stamp), "check %u", ++checks);
	memcpy(shared_map + 64, stamp, sizeof(stamp));
	int sf = open("shared.bin", O_RDONLY);
	if (sf < 0 || pread(sf, seen, sizeof(seen), 64) != (ssize_t)sizeof(seen) || memcmp(seen, stamp, sizeof(stamp)) != 0) {
		if (sf >= 0) close(sf);
		return "shared-map-not-shared";
	}
	close(sf);
	unsigned char vec;
	if (mincore(none_page, PAGE, &vec) != 0) return "prot-none-missing";
	return NULL;
}

/* Uses about 1 MiB more stack than the process had at the checkpoint: the stack must still grow on demand. */
static int deep_stack(int depth)
{
	volatile char frame[16 * 1024];
	frame[0] = (char)depth;
	frame[sizeof(frame) - 1] = (char)depth;
	return depth == 0 ? frame[0] : deep_stack(depth - 1) + frame[sizeof(frame) - 1] - depth;
}

static const char *check_process(void)
{
	if (deep_stack(64) != 0) return "stack-growth";
	stack_t ss;
	if (sigaltstack(NULL, &ss) || ss.ss_sp != altstack || ss.ss_size != sizeof(altstack)) return "sigaltstack";
	sigset_t cur, pend;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	if (!sigismember(&cur, SIGUSR2) || !sigismember(&cur, SIGRTMIN + 2) || sigismember(&cur, SIGUSR1)) return "sigmask";
	sigpending(&pend);
	if (!sigismember(&pend, SIGUSR2) || !sigismember(&pend, SIGRTMIN + 2)) return "pending";
	struct sigaction sa;
	sigaction(SIGUSR1, NULL, &sa);
	if (sa.sa_handler != on_usr1 || !(sa.sa_flags & SA_ONSTACK) || !(sa.sa_flags & SA_RESTART)) return "sigaction-usr1";
	sigaction(SIGRTMIN + 1, NULL, &sa);
	if (sa.sa_sigaction != on_rt || !(sa.sa_flags & SA_SIGINFO)) return "sigaction-rt";
	sigaction(SIGHUP, NULL, &sa);
	if (sa.sa_handler != SIG_IGN) return "sigaction-hup";
	struct itimerval it;
	getitimer(ITIMER_REAL, &it);
	if (it.it_value.tv_sec < 1000 || it.it_value.tv_sec > 100000 || it.it_interval.tv_sec != 100000) return "itimer";
	mode_t m = umask(027); umask(m);
	if (m != 027) return "umask";
	char cwd[4096];
	if (!getcwd(cwd, sizeof(cwd)) || strcmp(cwd, workdir) != 0) return "cwd";
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur != 512) return "rlimit-nofile";
	getrlimit(RLIMIT_CORE, &rl);
	if (rl.rlim_cur != 0) return "rlimit-core";
	errno = 0;
	if (getpriority(PRIO_PROCESS, 0) != 5 || errno) return "nice";
	char comm[32] = { 0 };
	int cf = open("/proc/self/comm", O_RDONLY);
	if (cf < 0 || read(cf, comm, sizeof(comm) - 1) <= 0) return "comm-read";
	close(cf);
	if (strcmp(comm, "selfcheck\n") != 0) return "comm";
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) return "membarrier-registration";
	return NULL;
}

static const char *check_files(void)
{
	int fl = fcntl(3, F_GETFL);
	if (fl < 0 || !(fl & O_APPEND)) return "log-fd";
	if (lseek(4, 0, SEEK_CUR) != 4096) return "data-offset";
	char buf[16];
	if (pread(4, buf, 5, 0) != 5 || memcmp(buf, "DATA0", 5)) return "data-content";
	struct stat st;
	if (fstat(5, &st) || !S_ISDIR(st.st_mode)) return "dir-fd";
	if (fstat(6, &st) || !S_ISCHR(st.st_mode)) return "devnull";
	if (fcntl(6, F_GETFD) & FD_CLOEXEC) return "devnull-cloexec";
	if (!(fcntl(7, F_GETFD) & FD_CLOEXEC)) return "devzero-cloexec";
	if (read(7, buf, 4) != 4 || buf[0] || buf[3]) return "devzero";
	int n = read(8, buf, sizeof(buf)); /* the pipe is O_NONBLOCK */
	if (n != 11 || memcmp(buf, "hello pipe\n", 11)) return "pipe-data";
	if (write(9, buf, n) != n) return "pipe-refill";
	if (!(fcntl(8, F_GETFL) & O_NONBLOCK)) return "pipe-flags";
	return NULL;
}

static void report(const char *prefix, const char *bad)
{
	char line[160];
	int n = bad ? snprintf(line, sizeof(line), "%sCORRUPT %s pid=%d\n", prefix, bad, getpid())
		    : snprintf(line, sizeof(line), "%sOK counter=%ld pid=%d\n", prefix, counter, getpid());
	if (write(3, line, n) != n) _exit(3);
}

static const char *check_all(void)
{
	const char *bad = check_memory();
	if (!bad) bad = check_files();
	if (!bad) bad = check_process();
	return bad;
}

static void put_fd(int fd, int want)
{
	if (fd == want) return;
	if (dup2(fd, want) < 0) die("dup2");
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: %s sleep|read|pause WORKDIR\n", argv[0]); return 2; }
	read_mode = strcmp(argv[1], "read") == 0;
	int pause_mode = strcmp(argv[1], "pause") == 0;
	if (!realpath(argv[2], workdir)) die("workdir");
	if (chdir(workdir)) die("chdir");
	umask(027);

	/* Files at fixed numbers. Close what we inherited above stderr first. */
	for (int fd = 3; fd < 64; fd++) close(fd);
	put_fd(open("selfcheck.log", O_WRONLY | O_CREAT | O_APPEND, 0640), 3);
	int data = open("data.bin", O_RDWR | O_CREAT | O_TRUNC, 0640);
	char page[PAGE];
	for (int i = 0; i < 4; i++) {
		memset(page, 'a' + i, sizeof(page));
		snprintf(page, sizeof(page), "DATA%d", i);
		if (write(data, page, sizeof(page)) != sizeof(page)) die("data");
	}
	lseek(data, 4096, SEEK_SET);
	put_fd(data, 4);
	put_fd(open(".", O_RDONLY | O_DIRECTORY), 5);
	put_fd(open("/dev/null", O_RDWR), 6);
	put_fd(open("/dev/zero", O_RDONLY | O_CLOEXEC), 7);
	fcntl(7, F_SETFD, FD_CLOEXEC);
	int p[2];
	if (pipe2(p, O_NONBLOCK)) die("pipe");
	int r = dup(p[0]), w = dup(p[1]); close(p[0]); close(p[1]);
	put_fd(r, 8); put_fd(w, 9);
	if (write(9, "hello pipe\n", 11) != 11) die("pipe write");
	if (pipe(p)) die("pipe2");
	r = dup(p[0]); w = dup(p[1]); close(p[0]); close(p[1]);
	put_fd(r, 10); put_fd(w, 11);

	/* Memory. */
	anon = mmap(NULL, ANON_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro_page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	none_page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int mf = open("mapped.bin", O_RDWR | O_CREAT | O_TRUNC, 0640);
	memset(page, 0, sizeof(page));
	strcpy(page, "file page 0");
	if (write(mf, page, PAGE) != PAGE) die("mapped");
	memset(page, 0, sizeof(page));
	strcpy(page, "file page 1");
	if (write(mf, page, PAGE) != PAGE) die("mapped");
	priv_map = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, mf, 0);
	int sf = open("shared.bin", O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (ftruncate(sf, PAGE)) die("shared");
	shared_map = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, sf, 0);
	close(mf); close(sf);
	if (anon == MAP_FAILED || ro_page == MAP_FAILED || none_page == MAP_FAILED || priv_map == MAP_FAILED || shared_map == MAP_FAILED) die("mmap");
	uint64_t s = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < ANON_SIZE / 8; i++) anon[i] = xs(&s);
	heap_block = malloc(100000);
	for (int i = 0; i < 100000; i++) heap_block[i] = (char)(i * 13);
	for (int i = 0; i < PAGE; i++) ro_page[i] = (char)(i * 7);
	mprotect(ro_page, PAGE, PROT_READ);
	none_page[0] = 1;
	mprotect(none_page, PAGE, PROT_NONE);
	strcpy(priv_map, "copy-on-write page");
	strcpy(shared_map, "shared mapping");

	/* Signals. */
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	sigaltstack(&ss, NULL);
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1; sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_term; sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN; sa.sa_flags = 0;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_sigaction = on_rt; sa.sa_flags = SA_SIGINFO;
	sigaction(SIGRTMIN + 1, &sa, NULL);
	sigaction(SIGRTMIN + 2, &sa, NULL);
	sigset_t blk; sigemptyset(&blk); sigaddset(&blk, SIGUSR2); sigaddset(&blk, SIGRTMIN + 2);
	sigprocmask(SIG_BLOCK, &blk, NULL);
	raise(SIGUSR2);
	union sigval v = { .sival_int = 42 };
	sigqueue(getpid(), SIGRTMIN + 2, v);
	struct itimerval it = { .it_interval = { 100000, 0 }, .it_value = { 50000, 0 } };
	setitimer(ITIMER_REAL, &it, NULL);

	/* Process attributes. */
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = 512;
	setrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = 0; rl.rlim_max = RLIM_INFINITY;
	setrlimit(RLIMIT_CORE, &rl);
	if (setpriority(PRIO_PROCESS, 0, 5)) die("nice");
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0)) die("membarrier");

	const char *bad = check_all();
	if (bad) { report("SETUP ", bad); return 1; }

	announce_ready(getpid());

	volatile char stack_pattern[4096];
	for (int i = 0; i < 4096; i++) stack_pattern[i] = (char)(i ^ 0x5a);

	struct timespec ts = { 0, 50 * 1000 * 1000 };
	while (!stop_requested) {
		if (check_requested) {
			check_requested = 0;
			bad = check_all();
			for (int i = 0; !bad && i < 4096; i++)
				if (stack_pattern[i] != (char)(i ^ 0x5a)) bad = "stack";
			report("", bad);
		}
		if (read_mode) {
			char c;
			if (read(10, &c, 1) < 0 && errno != EINTR) { report("", "read-error"); return 1; }
		} else if (pause_mode) {
			pause();
		} else {
			nanosleep(&ts, NULL);
		}
		counter++;
	}
	bad = check_all();
	if (!bad) {
		sigset_t rt; sigemptyset(&rt); sigaddset(&rt, SIGRTMIN + 2);
		siginfo_t info;
		struct timespec zero = { 0, 0 };
		if (sigtimedwait(&rt, &info, &zero) != SIGRTMIN + 2) bad = "rt-pending-lost";
		else if (info.si_value.sival_int != 42) bad = "rt-value";
	}
	report("EXIT ", bad);
	return bad ? 1 : 0;
}
