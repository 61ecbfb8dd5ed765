/* ptyarrangements WORKDIR MODE
 * Pseudo-terminal arrangements that Tests/Targets/ptys.c does not make (after CRIU's pty01-pty03 and tty02), set up
 * by MODE and checked on SIGUSR1; appends "OK MODE pid=P" or "CORRUPT MODE <what> pid=P" to
 * WORKDIR/ptyarrangements.log. Writes WORKDIR/ready (its pid) once set up.
 *   twoslaves  a master and two open file descriptions of its slave (opened twice, O_NOCTTY; the first
 *              O_NONBLOCK), each holding nothing but its own flags: both must still be that slave, with their own
 *              flags, and each reach the master ("one", "two") and hear from it.
 *   noslave    a master whose slave was never opened, unlocked: the slave must open by its name again and talk
 *              to the master.
 *   forked     a master (its slave open too) shared with a child that inherited it and set O_NONBLOCK on it
 *              (the one description): after restore the child must still hold the very description (kcmp) and
 *              it must still be non-blocking; 6 bytes written by the slave before the checkpoint ("queued") wait
 *              on the master.
 *   ttyonly    a child that leads a session whose controlling terminal is the slave, which it closed after
 *              TIOCSCTTY, holding only /dev/tty (where it wrote "via-tty"): the master must name the child's
 *              session (TIOCGSID), the child must still hold /dev/tty and be controlled by the slave, and the
 *              bytes wait on the master.
 *   othersession  two children that lead sessions of their own: the first holds the slave opened O_NOCTTY and is
 *              controlled by nothing (at fd 20), the second is controlled by the slave and holds none of it (after CRIU's
 *              tty02 and tty03): the master must name the second's session, the first must still hold the slave and
 *              have no controlling terminal, the second must still be controlled by the slave. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>
#include "selfcheck.h"

#define KCMP_FILE 0

static const char *mode;
static char bad[200];
static volatile sig_atomic_t check_requested;
static int master, slave1, slave2;
static pid_t child;

static void on_usr1(int s) { (void)s; check_requested = 1; }

static int fail(const char *format, ...)
{
	if (!bad[0]) {
		va_list args;
		va_start(args, format);
		vsnprintf(bad, sizeof(bad), format, args);
		va_end(args);
	}
	return -1;
}

static int open_master(void)
{
	int fd = posix_openpt(O_RDWR | O_NOCTTY);
	if (fd < 0 || grantpt(fd) || unlockpt(fd)) die("ptmx");
	/* Raw: what is written comes back as written, no echo. */
	return fd;
}

static int open_slave(int of, int flags)
{
	int fd = open(ptsname(of), O_RDWR | O_NOCTTY | flags);
	if (fd < 0) die("slave");
	struct termios t;
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(fd, TCSANOW, &t);
	}
	return fd;
}

/* Reads exactly what was expected from FD, waiting up to 3 s. */
static int expect(int fd, const char *what, const char *name)
{
	char buf[64] = { 0 };
	size_t got = 0, want = strlen(what);
	for (int i = 0; i < 300 && got < want; i++) {
		ssize_t n = read(fd, buf + got, want - got);
		if (n > 0) got += (size_t)n;
		else usleep(10000);
	}
	if (got != want || memcmp(buf, what, want)) return fail("%s read '%s', not '%s'", name, buf, what);
	return 0;
}

static void nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static int same_terminal(int a, int b)
{
	struct stat x, y;
	return !fstat(a, &x) && !fstat(b, &y) && x.st_rdev == y.st_rdev;
}

/* ---- twoslaves ---- */

static void setup_twoslaves(void)
{
	master = open_master();
	slave1 = open_slave(master, O_NONBLOCK);
	slave2 = open_slave(master, 0);
}

static int check_twoslaves(void)
{
	nonblocking(master);
	if (!same_terminal(slave1, slave2)) return fail("the two slaves are different terminals");
	if (!(fcntl(slave1, F_GETFL) & O_NONBLOCK) || (fcntl(slave2, F_GETFL) & O_NONBLOCK))
		return fail("the slaves' flags are %x and %x: one description, or flags lost", fcntl(slave1, F_GETFL), fcntl(slave2, F_GETFL));
	if (write(slave1, "one", 3) != 3 || expect(master, "one", "master")) return -1;
	if (write(slave2, "two", 3) != 3 || expect(master, "two", "master")) return -1;
	if (write(master, "back", 4) != 4 || expect(slave1, "back", "first slave")) return -1;
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) & ~O_NONBLOCK);
	return 0;
}

/* ---- noslave ---- */

static void setup_noslave(void) { master = open_master(); }

static int check_noslave(void)
{
	int locked = 1;
	if (ioctl(master, TIOCGPTLCK, &locked) || locked) return fail("the slave is locked");
	int slave = open_slave(master, O_NONBLOCK);
	nonblocking(master);
	int result = write(master, "hello", 5) != 5 || expect(slave, "hello", "slave") || write(slave, "world", 5) != 5
		|| expect(master, "world", "master") ? -1 : 0;
	close(slave);
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) & ~O_NONBLOCK);
	return result;
}

/* ---- forked ---- */

static void setup_forked(void)
{
	master = open_master();
	slave1 = open_slave(master, 0);
	int ready[2];
	if (pipe(ready)) die("pipe");
	child = fork();
	if (child < 0) die("fork");
	if (child == 0) {
		nonblocking(master);
		close(ready[0]);
		if (write(ready[1], "x", 1) != 1) _exit(1);
		for (;;) pause();
	}
	char c;
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1) die("child");
	close(ready[0]);
	if (write(slave1, "queued", 6) != 6) die("write");
}

static int check_forked(void)
{
	if (syscall(SYS_kcmp, getpid(), child, KCMP_FILE, master, master) != 0) return fail("the child holds another description of the master");
	if (!(fcntl(master, F_GETFL) & O_NONBLOCK)) return fail("the master the child made non-blocking blocks");
	return expect(master, "queued", "master");
}

/* ---- ttyonly ---- */

static void setup_ttyonly(void)
{
	master = open_master();
	int ready[2];
	if (pipe(ready)) die("pipe");
	child = fork();
	if (child < 0) die("fork");
	if (child == 0) {
		if (setsid() < 0) die("setsid");
		int slave = open_slave(master, 0);
		if (ioctl(slave, TIOCSCTTY, 0)) die("TIOCSCTTY");
		close(slave);
		close(master);
		int tty = open("/dev/tty", O_RDWR);
		if (tty < 0 || write(tty, "via-tty", 7) != 7) die("/dev/tty");
		close(ready[0]);
		if (write(ready[1], "x", 1) != 1) _exit(1);
		for (;;) pause();
	}
	char c;
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1) die("child");
	close(ready[0]);
}

static int check_ttyonly(void)
{
	pid_t session = 0;
	if (ioctl(master, TIOCGSID, &session) || session != child) return fail("the terminal's session is %d, not %d", session, child);
	char path[64], link[64] = { 0 };
	int held = 0;
	for (int fd = 0; fd < 64; fd++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", child, fd);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) { link[n] = 0; held += !strcmp(link, "/dev/tty"); }
	}
	if (held != 1) return fail("the child holds /dev/tty %d times", held);
	nonblocking(master);
	int result = expect(master, "via-tty", "master");
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) & ~O_NONBLOCK);
	return result;
}

/* ---- othersession ---- */

static pid_t holder;

/* A child of ours that leads a session of its own, set up by PREPARE, then waits. */
static pid_t session_leader(void (*prepare)(void))
{
	int ready[2];
	if (pipe(ready)) die("pipe");
	pid_t pid = fork();
	if (pid < 0) die("fork");
	if (pid == 0) {
		if (setsid() < 0) die("setsid");
		prepare();
		close(ready[0]);
		if (write(ready[1], "x", 1) != 1) _exit(1);
		for (;;) pause();
	}
	char c;
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1) die("child");
	close(ready[0]);
	return pid;
}

#define HELD_SLAVE 20

static void hold_slave(void)
{
	int slave = open_slave(master, 0);
	if (dup2(slave, HELD_SLAVE) < 0) die("dup2");
	close(slave);
	close(master);
}

static void control_only(void)
{
	int slave = open_slave(master, 0);
	if (ioctl(slave, TIOCSCTTY, 0)) die("TIOCSCTTY");
	close(slave);
	close(master);
}

static void setup_othersession(void)
{
	master = open_master();
	holder = session_leader(hold_slave);
	child = session_leader(control_only);
}

/* The tty_nr of /proc/PID/stat: the controlling terminal's device, 0 for none. */
static unsigned long controlling_terminal(pid_t pid)
{
	char path[64], text[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
	if (f) fclose(f);
	text[n] = 0;
	char *after = strrchr(text, ')');
	unsigned long tty = ~0UL;
	if (after) sscanf(after + 2, "%*c %*d %*d %*d %lu", &tty);
	return tty;
}

static int check_othersession(void)
{
	pid_t session = 0;
	if (ioctl(master, TIOCGSID, &session) || session != child) return fail("the terminal's session is %d, not %d", session, child);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", holder, HELD_SLAVE);
	struct stat terminal, held;
	if (stat(ptsname(master), &terminal)) return fail("stat %s", ptsname(master));
	if (stat(path, &held) || held.st_rdev != terminal.st_rdev) return fail("the first leader does not hold the slave at fd %d", HELD_SLAVE);
	if (controlling_terminal(holder) != 0) return fail("the first leader is controlled by %lx", controlling_terminal(holder));
	if (controlling_terminal(child) != (unsigned long)terminal.st_rdev) return fail("the second leader is controlled by %lx", controlling_terminal(child));
	return 0;
}

static const struct { const char *name; void (*setup)(void); int (*check)(void); } modes[] = {
	{ "twoslaves", setup_twoslaves, check_twoslaves },
	{ "noslave", setup_noslave, check_noslave },
	{ "forked", setup_forked, check_forked },
	{ "ttyonly", setup_ttyonly, check_ttyonly },
	{ "othersession", setup_othersession, check_othersession },
};

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: %s WORKDIR MODE\n", argv[0]); return 2; }
	if (chdir(argv[1])) die("chdir");
	mode = argv[2];
	int chosen = -1;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) if (!strcmp(modes[i].name, mode)) chosen = (int)i;
	if (chosen < 0) { fprintf(stderr, "unknown mode %s\n", mode); return 2; }
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	modes[chosen].setup();

	announce_ready(getpid());
	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		bad[0] = 0;
		modes[chosen].check();
		FILE *log = fopen("ptyarrangements.log", "a");
		if (bad[0]) fprintf(log, "CORRUPT %s %s pid=%d\n", mode, bad, getpid());
		else fprintf(log, "OK %s pid=%d\n", mode, getpid());
		fclose(log);
	}
}
