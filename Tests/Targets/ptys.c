/* ptys WORKDIR
 * A pseudo-terminal pair that lives entirely inside the tree, and checks itself after a restore.
 *   root (P)       - holds the master (/dev/ptmx, packet mode on, owned by P for SIGIO) and a second master whose
 *                    slave stays locked;
 *   session (C)    - a session leader whose controlling terminal is the slave (fds 0-2), with /dev/tty open at fd 30;
 *                    it set the slave raw (no ICANON, ECHO, ICRNL, OPOST) with ISIG on and ^G as VINTR, a window
 *                    of 33x111 and exclusive mode; it is in the background;
 *   foreground (G) - C's child in a process group of its own, which C made the terminal's foreground group.
 * Both directions hold queued bytes: G wrote "queued-for-master" that P has not read, P wrote "queued-for-slave"
 * that G has not read.
 * On SIGUSR1 P checks and appends "OK index=N pid=P" or "CORRUPT <what> pid=P" to WORKDIR/ptys.log:
 *   - the master has its index, packet mode, its owner, is unlocked, and the window size is 33x111; the second master has
 *     its index and its slave is locked (opening it fails with EIO);
 *   - the queued bytes: P reads a data packet "queued-for-master", G reads "queued-for-slave";
 *   - a round trip: "ping" written to the master reaches G, whose "pong" reaches the master;
 *   - ^G written to the master signals SIGINT to G's group only, and the master reads a packet status of
 *     FLUSHREAD|FLUSHWRITE (the signal flushes the terminal); a new window size signals SIGWINCH to G's group only;
 *   - C is the session leader, its controlling terminal is the slave, the foreground group is G's, the settings
 *     and exclusive mode are as set, fd 30 is still /dev/tty and writing to it reaches the master; G is in its own group of C's session
 *     and controlled by the slave too;
 * then both directions are queued again for the next checkpoint. WORKDIR/ready holds P's pid once set up. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define VINTR_CHAR 0x07
#define TTY_FD 30
#define TIMEOUT_MS 3000

static const char to_master[] = "queued-for-master", to_slave[] = "queued-for-slave";
static volatile sig_atomic_t check_requested, stop_requested, interrupts, resizes;
static int cmd_c[2], cmd_g[2], report[2];
static int master, locked_master, index_at_start, locked_index_at_start;
static pid_t c_pid, g_pid;
static char log_path[4200], problem[512];

static void on_usr1(int s) { (void)s; check_requested = 1; }
static void on_term(int s) { (void)s; stop_requested = 1; }
static void on_int(int s) { (void)s; interrupts++; }
static void on_winch(int s) { (void)s; resizes++; }

static int fail(const char *format, ...)
{
	va_list args;
	va_start(args, format);
	vsnprintf(problem, sizeof problem, format, args);
	va_end(args);
	return -1;
}

static void handle(int sig, void (*handler)(int))
{
	struct sigaction sa = { .sa_handler = handler };
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static int wait_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n;
	while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR)
		;
	return n;
}

/* Reads exactly strlen(want) bytes from fd (within the timeout) and compares. */
static int expect_bytes(int fd, const char *want, const char *what)
{
	char got[128] = { 0 };
	size_t need = strlen(want), have = 0;
	while (have < need) {
		if (wait_readable(fd, TIMEOUT_MS) <= 0) return fail("%s: got '%.*s' then nothing", what, (int)have, got);
		ssize_t n = read(fd, got + have, need - have);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) return fail("%s: read failed (%s)", what, n < 0 ? strerror(errno) : "end");
		have += n;
	}
	return memcmp(got, want, need) ? fail("%s: got '%.*s', wanted '%s'", what, (int)have, got, want) : 0;
}

/* Reads data packets from the master (TIOCPKT_DATA, then bytes) until strlen(want) bytes came. */
static int expect_master_data(const char *want, const char *what)
{
	char got[256] = { 0 }, packet[256];
	size_t need = strlen(want), have = 0;
	while (have < need) {
		if (wait_readable(master, TIMEOUT_MS) <= 0) return fail("%s: master got '%.*s' then nothing", what, (int)have, got);
		ssize_t n = read(master, packet, sizeof packet);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) return fail("%s: master read failed (%s)", what, n < 0 ? strerror(errno) : "end");
		if (packet[0] != TIOCPKT_DATA) return fail("%s: master read packet status 0x%x instead of data", what, packet[0]);
		if (have + n - 1 > sizeof got) return fail("%s: master got too much", what);
		memcpy(got + have, packet + 1, n - 1);
		have += n - 1;
	}
	return have != need || memcmp(got, want, need) ? fail("%s: master got '%.*s', wanted '%s'", what, (int)have, got, want) : 0;
}

static int expect_master_status(int bits)
{
	unsigned char status;
	if (wait_readable(master, TIMEOUT_MS) <= 0) return fail("no packet status on the master after VINTR");
	if (read(master, &status, 1) != 1) return fail("master status read failed: %s", strerror(errno));
	return (status & bits) == bits ? 0 : fail("master packet status 0x%x, wanted bits 0x%x", status, bits);
}

/* Reads one answer line of C or G, which must start with "ok". */
static int read_answer(const char *who, const char *about)
{
	char line[400];
	size_t len = 0;
	while (len == 0 || line[len - 1] != '\n') {
		if (wait_readable(report[0], 3 * TIMEOUT_MS) <= 0) return fail("%s did not answer %s", who, about);
		ssize_t n = read(report[0], line + len, 1);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0 || ++len == sizeof line) return fail("%s's answer to %s is broken", who, about);
	}
	line[len - 1] = 0;
	return strncmp(line, "ok", 2) ? fail("%s: %s", who, line) : 0;
}

/* Sends a one-byte command to C or G and reads its answer. */
static int ask(int *cmd, char command, const char *who)
{
	char about[] = "' '";
	about[1] = command;
	if (write(cmd[1], &command, 1) != 1) return fail("cannot send %s to %s", about, who);
	return read_answer(who, about);
}

static void answer(const char *format, ...)
{
	char line[400];
	va_list args;
	va_start(args, format);
	int n = vsnprintf(line, sizeof line - 1, format, args);
	va_end(args);
	line[n] = '\n';
	(void)!write(report[1], line, n + 1);
}

static int next_command(int *cmd)
{
	char c;
	ssize_t n;
	while ((n = read(cmd[0], &c, 1)) < 0 && errno == EINTR)
		;
	return n == 1 ? c : -1;
}

static int read_stat(int pid, int *pgrp, int *session, int *tty_nr)
{
	char path[64], text[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f) return -1;
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = 0;
	char *after = strrchr(text, ')');
	return after && sscanf(after + 2, "%*c %*d %d %d %d", pgrp, session, tty_nr) == 3 ? 0 : -1;
}

static int encoded(dev_t dev) { return (int)((minor(dev) & 0xff) | (major(dev) << 8) | ((minor(dev) & ~0xffu) << 12)); }

/* Runs in G: the terminal's foreground group. */
static void foreground(void)
{
	handle(SIGINT, on_int);
	handle(SIGWINCH, on_winch);
	answer("ok ready");
	for (;;) {
		int command = next_command(cmd_g);
		if (command < 0) _exit(0);
		if (command == 'q') { /* queue bytes for the master */
			answer(write(1, to_master, strlen(to_master)) == (ssize_t)strlen(to_master) ? "ok" : "write failed: %s", strerror(errno));
		} else if (command == 'c') { /* read what was queued for the slave */
			answer(expect_bytes(0, to_slave, "queued bytes") ? "%s" : "ok", problem);
		} else if (command == 'p') { /* ping, pong */
			if (expect_bytes(0, "ping", "round trip")) answer("%s", problem);
			else answer(write(1, "pong", 4) == 4 ? "ok" : "pong failed: %s", strerror(errno));
		} else if (command == 's' || command == 'w') { /* 's': one SIGINT and one SIGWINCH must have come; 'w': one SIGWINCH */
			int want_interrupts = command == 's';
			for (int waited = 0; (interrupts < want_interrupts || resizes < 1) && waited < TIMEOUT_MS; waited += 10)
				usleep(10000);
			int pgrp, session, tty_nr, got_interrupts = interrupts, got_resizes = resizes;
			struct stat st;
			interrupts = resizes = 0; /* before the answer, after which the next signal may come */
			if (got_interrupts != want_interrupts || got_resizes != 1) answer("foreground group got %d SIGINT and %d SIGWINCH, wanted %d and 1", got_interrupts, got_resizes, want_interrupts);
			else if (read_stat(getpid(), &pgrp, &session, &tty_nr) || fstat(0, &st)) answer("cannot read its own state");
			else if (pgrp != getpid() || session != c_pid || tty_nr != encoded(st.st_rdev))
				answer("foreground process: group %d session %d terminal 0x%x, wanted %d %d 0x%x", pgrp, session, tty_nr, getpid(), c_pid, encoded(st.st_rdev));
			else answer("ok");
		}
	}
}

static const char *check_session(void)
{
	static char why[300];
	struct termios t;
	struct stat st, tty_st;
	int pgrp, session, tty_nr;
	if (interrupts || resizes) { snprintf(why, sizeof why, "background session leader got %d SIGINT and %d SIGWINCH", interrupts, resizes); return why; }
	if (getsid(0) != getpid()) return "not a session leader";
	if (fstat(0, &st) || read_stat(getpid(), &pgrp, &session, &tty_nr)) return "cannot read its own state";
	if (tty_nr != encoded(st.st_rdev)) { snprintf(why, sizeof why, "controlling terminal 0x%x, not its slave 0x%x", tty_nr, encoded(st.st_rdev)); return why; }
	if (tcgetsid(0) != getpid()) return "the slave does not control its session";
	if (tcgetpgrp(0) != g_pid) { snprintf(why, sizeof why, "foreground group %d, wanted %d", tcgetpgrp(0), g_pid); return why; }
	if (tcgetattr(0, &t)) return "tcgetattr failed";
	if ((t.c_lflag & (ICANON | ECHO)) || !(t.c_lflag & ISIG) || (t.c_iflag & ICRNL) || (t.c_oflag & OPOST) || t.c_cc[VINTR] != VINTR_CHAR)
		{ snprintf(why, sizeof why, "settings changed: iflag 0%o oflag 0%o lflag 0%o VINTR %d", t.c_iflag, t.c_oflag, t.c_lflag, t.c_cc[VINTR]); return why; }
	int exclusive = 0;
	if (ioctl(0, TIOCGEXCL, &exclusive) || !exclusive) return "the slave left exclusive mode";
	if (fstat(TTY_FD, &tty_st) || !S_ISCHR(tty_st.st_mode) || tty_st.st_rdev != makedev(5, 0)) return "fd 30 is no longer /dev/tty";
	int again = open("/dev/tty", O_RDWR);
	if (again < 0) return "/dev/tty cannot be opened: no controlling terminal";
	close(again);
	if (write(TTY_FD, "via-dev-tty", 11) != 11) return "writing to /dev/tty failed";
	return NULL;
}

/* Runs in C: the session leader, in the background once G's group is in the foreground. */
static void session_leader(const char *slave_name)
{
	/* P alone holds the masters and the writing ends of the commands: when it goes, C and G end. */
	close(master);
	close(locked_master);
	close(cmd_c[1]);
	close(cmd_g[1]);
	close(report[0]);
	setsid();
	int slave = open(slave_name, O_RDWR); /* no O_NOCTTY: it becomes the session's terminal */
	if (slave < 0) _exit(1);
	dup2(slave, 0); dup2(slave, 1); dup2(slave, 2);
	if (slave > 2) close(slave);
	struct termios t;
	tcgetattr(0, &t);
	t.c_lflag &= ~(ICANON | ECHO | ECHOE | ECHOK | ECHONL | IEXTEN);
	t.c_lflag |= ISIG;
	t.c_iflag &= ~(ICRNL | INLCR | IGNCR | IXON);
	t.c_oflag &= ~OPOST;
	t.c_cc[VINTR] = VINTR_CHAR;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	tcsetattr(0, TCSANOW, &t);
	struct winsize size = { .ws_row = 33, .ws_col = 111 };
	ioctl(0, TIOCSWINSZ, &size);
	ioctl(0, TIOCEXCL);
	int tty = open("/dev/tty", O_RDWR);
	if (tty < 0 || dup2(tty, TTY_FD) < 0) _exit(1);
	close(tty);
	c_pid = getpid();
	g_pid = fork();
	if (g_pid == 0) {
		close(cmd_c[0]);
		setpgid(0, 0);
		g_pid = getpid();
		foreground();
	}
	close(cmd_g[0]);
	setpgid(g_pid, g_pid);
	if (tcsetpgrp(0, g_pid)) _exit(1);
	handle(SIGINT, on_int);
	handle(SIGWINCH, on_winch);
	answer("ok ready");
	for (;;) {
		int command = next_command(cmd_c);
		if (command < 0) _exit(0);
		if (command == 'c') {
			const char *why = check_session();
			answer(why ? "%s" : "ok", why);
		}
	}
}

static const char *check(void)
{
	int n, lock, packet;
	struct winsize size;
	if (ioctl(master, TIOCGPTN, &n) || n != index_at_start) return "the master has another index";
	if (ioctl(master, TIOCGPTLCK, &lock) || lock) return "the slave is locked";
	if (ioctl(master, TIOCGPKT, &packet) || !packet) return "packet mode is off";
	if (fcntl(master, F_GETOWN) != getpid()) return "the master lost its owner";
	if (ioctl(locked_master, TIOCGPTN, &n) || n != locked_index_at_start) return "the locked master has another index";
	if (ioctl(locked_master, TIOCGPTLCK, &lock) || !lock) return "the second slave is no longer locked";
	char name[64];
	snprintf(name, sizeof name, "/dev/pts/%d", locked_index_at_start);
	int opened = open(name, O_RDWR | O_NOCTTY);
	if (opened >= 0 || errno != EIO) { if (opened >= 0) close(opened); return "the locked slave can be opened"; }
	if (ioctl(master, TIOCGWINSZ, &size) || size.ws_row != 33 || size.ws_col != 111) return "the window size changed";

	if (expect_master_data(to_master, "bytes queued for the master")) return problem;
	if (ask(cmd_g, 'c', "the foreground process")) return problem;

	if (write(master, "ping", 4) != 4) return "writing to the master failed";
	if (ask(cmd_g, 'p', "the foreground process") || expect_master_data("pong", "round trip")) return problem;

	char intr = VINTR_CHAR;
	if (write(master, &intr, 1) != 1) return "writing VINTR failed";
	if (expect_master_status(TIOCPKT_FLUSHREAD | TIOCPKT_FLUSHWRITE)) return problem;
	/* One resize at a time: two SIGWINCH pending at once would be one. */
	struct winsize bigger = { .ws_row = 40, .ws_col = 100 }, saved = { .ws_row = 33, .ws_col = 111 };
	if (ioctl(master, TIOCSWINSZ, &bigger)) return "TIOCSWINSZ failed";
	if (ask(cmd_g, 's', "the foreground process")) return problem;
	if (ioctl(master, TIOCSWINSZ, &saved)) return "TIOCSWINSZ failed";
	if (ask(cmd_g, 'w', "the foreground process")) return problem;
	if (ask(cmd_c, 'c', "the session leader") || expect_master_data("via-dev-tty", "/dev/tty")) return problem;

	/* Queued again, both ways, for the next checkpoint. */
	if (ask(cmd_g, 'q', "the foreground process")) return problem;
	if (write(master, to_slave, strlen(to_slave)) != (ssize_t)strlen(to_slave)) return "queueing for the slave failed";
	return NULL;
}

static void log_line(const char *line)
{
	FILE *log = fopen(log_path, "a");
	if (log) { fprintf(log, "%s\n", line); fclose(log); }
}

int main(int argc, char **argv)
{
	if (argc != 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	snprintf(log_path, sizeof log_path, "%s/ptys.log", argv[1]);
	master = posix_openpt(O_RDWR | O_NOCTTY);
	locked_master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0 || locked_master < 0 || grantpt(master) || unlockpt(master)) { perror("ptmx"); return 1; }
	ioctl(master, TIOCGPTN, &index_at_start);
	ioctl(locked_master, TIOCGPTN, &locked_index_at_start);
	char slave_name[64];
	snprintf(slave_name, sizeof slave_name, "/dev/pts/%d", index_at_start);
	if (pipe(cmd_c) || pipe(cmd_g) || pipe(report)) { perror("pipe"); return 1; }
	if ((c_pid = fork()) == 0) session_leader(slave_name);
	close(cmd_c[0]);
	close(cmd_g[0]);
	close(report[1]);
	if (read_answer("a child", "at start") || read_answer("a child", "at start")) { fprintf(stderr, "%s\n", problem); return 1; }
	int on = 1;
	if (ioctl(master, TIOCPKT, &on) || fcntl(master, F_SETOWN, getpid())) { perror("master"); return 1; }
	if (ask(cmd_g, 'q', "the foreground process") || write(master, to_slave, strlen(to_slave)) != (ssize_t)strlen(to_slave)) {
		fprintf(stderr, "queueing: %s\n", problem);
		return 1;
	}

	sigset_t block, none;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &none);
	handle(SIGUSR1, on_usr1);
	handle(SIGTERM, on_term);
	char ready[4200];
	snprintf(ready, sizeof ready, "%s/ready", argv[1]);
	FILE *f = fopen(ready, "w");
	if (!f) { perror("ready"); return 1; }
	fprintf(f, "%d\n", getpid());
	fclose(f);
	while (!stop_requested) {
		sigsuspend(&none);
		if (check_requested) {
			check_requested = 0;
			const char *why = check();
			char line[700];
			if (why) snprintf(line, sizeof line, "CORRUPT %s pid=%d", why, getpid());
			else snprintf(line, sizeof line, "OK index=%d pid=%d", index_at_start, getpid());
			log_line(line);
		}
	}
	kill(c_pid, SIGKILL);
	return 0;
}
