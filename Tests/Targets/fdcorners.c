/* fdcorners WORKDIR MODE
 * Descriptors of unusual kinds, set up by MODE and checked after a restore on SIGUSR1; appends "OK MODE pid=P" or
 * "CORRUPT MODE <what> pid=P" to WORKDIR/fdcorners.log. Writes WORKDIR/ready (its pid) once set up.
 *   paths    O_PATH descriptors: a file, a directory, a symlink opened with O_PATH|O_NOFOLLOW, the /proc/self
 *            link itself (O_PATH|O_NOFOLLOW); a directory descriptor of /proc/PID (its own) and /proc/self/status
 *            opened for reading. Each must be the same file (device and inode) with O_PATH kept, and work: the
 *            file is reopened through /proc/self/fd, files are opened relative to the directory, the symlinks
 *            are links (fstatat AT_EMPTY_PATH) that read as before (/proc/self reads as our own pid).
 *   owners   SIGIO owners (F_SETOWN_EX) and signals (F_SETSIG): a socket owned by the process with SIGRTMIN+2,
 *            a pipe's read end owned by a second thread (F_OWNER_TID), a regular file owned by the process group
 *            (F_OWNER_PGRP). Each owner and signal must read back as set, and data arriving on the socket must
 *            raise SIGRTMIN+2 with si_fd of the socket.
 *   unlinked a datagram socket bound to WORKDIR/gone.sock, which was removed since, with a connected sender; a
 *            listener bound to WORKDIR/replaced.sock, a path that now names a regular file; a stream socket bound to
 *            WORKDIR/alone.sock and removed, connected to nothing; a FIFO opened on WORKDIR/ghost.fifo, removed
 *            since, with 12 unread bytes. Names must read back, the paths stay as they were (gone, or the regular
 *            file with its text), the sender's datagrams still arrive, the FIFO gives back its bytes then carries
 *            new ones.
 *   lease    a read lease on WORKDIR/read-lease.txt and a write lease on WORKDIR/write-lease.txt (F_SETLEASE):
 *            each must read back (F_GETLEASE) on the same descriptor.
 *   pidfd    pidfds of: a running child (pidfd_open, PIDFD_NONBLOCK), a second child made by clone3 with
 *            CLONE_PIDFD, the process itself, a zombie child and a child already reaped. The children's pidfds
 *            must signal them (pidfd_send_signal), a child's exit must make its pidfd readable (poll) and be
 *            waited for through it (waitid P_PIDFD); the pidfd of itself must name its own pid (fdinfo Pid:), the
 *            reaped child's must name no process (Pid: -1, pidfd_send_signal fails with ESRCH).
 *   rights   descriptors in flight (SCM_RIGHTS): a stream socketpair carries, in this order, "file" with a regular
 *            file at offset 3, "plain" without descriptors, "pipe" with a pipe's read end holding 9 bytes, "sock"
 *            with a socket whose peer we keep (and in whose own queue that peer left "inner" with an eventfd
 *            holding 7: in flight within in flight) and "tail" without descriptors; a datagram socketpair carries "two"
 *            with two descriptors (the file again and an eventfd holding 5); a seqpacket socketpair carries "seq"
 *            with the write end of a second pipe whose read end we keep. No process holds any of these files but
 *            through the queues. The receiver (the process itself, on check) must get the data and descriptors in
 *            order, and each must work: the file reads on from offset 3, the pipe gives its bytes, the socket talks
 *            to its peer, the eventfd reads 5, the pipe's write end writes to the kept read end.
 *   cycle    (refused) a stream socket in flight in its own queue: the check receives it, the same socket.
 *   flightpidfd (refused) a pidfd of the process itself in flight on a stream socket: the check receives it, and it
 *            names the process. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "selfcheck.h"

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static const char *mode;
static char bad[160];
static volatile sig_atomic_t check_requested, io_signals, io_fd = -1;

static void on_usr1(int s) { (void)s; check_requested = 1; }
static void on_io(int s, siginfo_t *info, void *context) { (void)s; (void)context; io_signals++; io_fd = info->si_fd; }

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

/* ---- paths ---- */

struct identity { dev_t dev; ino_t ino; };
static int path_file, path_dir, path_link, path_self, proc_dir, proc_status;
static struct identity ids[6];

static struct identity identity_of(int fd)
{
	struct stat st;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH)) die("fstatat");
	return (struct identity){ st.st_dev, st.st_ino };
}

static void setup_paths(void)
{
	unlink("opath.txt"); unlink("opath.link");
	int f = open("opath.txt", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (f < 0 || write(f, "hello", 5) != 5) die("opath.txt");
	close(f);
	if (symlink("opath.txt", "opath.link")) die("symlink");
	char proc[32];
	snprintf(proc, sizeof(proc), "/proc/%d", getpid());
	path_file = open("opath.txt", O_PATH);
	path_dir = open(".", O_PATH | O_DIRECTORY);
	path_link = open("opath.link", O_PATH | O_NOFOLLOW);
	path_self = open("/proc/self", O_PATH | O_NOFOLLOW);
	proc_dir = open(proc, O_RDONLY | O_DIRECTORY);
	proc_status = open("/proc/self/status", O_RDONLY);
	if (path_file < 0 || path_dir < 0 || path_link < 0 || path_self < 0 || proc_dir < 0 || proc_status < 0) die("open");
	int fds[] = { path_file, path_dir, path_link, path_self, proc_dir, proc_status };
	for (int i = 0; i < 6; i++) ids[i] = identity_of(fds[i]);
}

/* The pid in a /proc status text ("Pid:\tN"), or -1. */
static int pid_in_status(int fd)
{
	char text[4096];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	if (n <= 0) return -1;
	text[n] = 0;
	char *line = strstr(text, "\nPid:");
	return line ? atoi(line + 5) : -1;
}

static int check_paths(void)
{
	const char *names[] = { "O_PATH file", "O_PATH directory", "O_PATH symlink", "/proc/self link", "/proc/PID directory", "/proc/self/status" };
	int fds[] = { path_file, path_dir, path_link, path_self, proc_dir, proc_status };
	for (int i = 0; i < 6; i++) {
		struct identity now = identity_of(fds[i]);
		int o_path = (fcntl(fds[i], F_GETFL) & O_PATH) != 0;
		/* /proc inodes of a process are made anew with it: only the device is the same. */
		if (now.dev != ids[i].dev || (i < 3 && now.ino != ids[i].ino)) return fail("%s: another file", names[i]);
		if (o_path != (i < 4)) return fail("%s: O_PATH %s", names[i], o_path ? "set" : "lost");
	}
	char buf[32] = { 0 }, proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", path_file);
	int f = open(proc, O_RDONLY);
	if (f < 0 || read(f, buf, sizeof(buf)) != 5 || memcmp(buf, "hello", 5)) return fail("O_PATH file does not reopen");
	close(f);
	if (read(path_file, buf, 1) != -1 || errno != EBADF) return fail("O_PATH file can be read");
	f = openat(path_dir, "opath.txt", O_RDONLY);
	if (f < 0) return fail("openat O_PATH directory: %s", strerror(errno));
	close(f);
	struct stat st;
	if (fstatat(path_link, "", &st, AT_EMPTY_PATH) || !S_ISLNK(st.st_mode)) return fail("O_PATH symlink is no link");
	memset(buf, 0, sizeof(buf));
	if (readlinkat(path_link, "", buf, sizeof(buf) - 1) != 9 || strcmp(buf, "opath.txt")) return fail("O_PATH symlink reads '%s'", buf);
	if (fstatat(path_self, "", &st, AT_EMPTY_PATH) || !S_ISLNK(st.st_mode)) return fail("/proc/self is no link");
	memset(buf, 0, sizeof(buf));
	if (readlinkat(path_self, "", buf, sizeof(buf) - 1) <= 0 || atoi(buf) != getpid()) return fail("/proc/self reads '%s'", buf);
	f = openat(proc_dir, "status", O_RDONLY);
	if (f < 0) return fail("openat /proc/PID: %s", strerror(errno));
	int pid = pid_in_status(f);
	close(f);
	if (pid != getpid()) return fail("/proc/PID directory is of %d", pid);
	if ((pid = pid_in_status(proc_status)) != getpid()) return fail("/proc/self/status is of %d", pid);
	return 0;
}

/* ---- owners ---- */

static int owned_socket[2], owned_pipe[2], owned_file;
static pid_t owner_thread;

static void *thread_main(void *arg)
{
	(void)arg;
	owner_thread = (pid_t)syscall(SYS_gettid);
	for (;;) pause();
	return NULL;
}

static void setup_owners(void)
{
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_io;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGRTMIN + 2, &sa, NULL);
	sigset_t io;
	sigemptyset(&io);
	sigaddset(&io, SIGRTMIN + 2);
	sigaddset(&io, SIGIO);
	/* The thread inherits a mask without them: the process's signals come to the main thread. */
	pthread_sigmask(SIG_BLOCK, &io, NULL);
	pthread_t thread;
	if (pthread_create(&thread, NULL, thread_main, NULL)) die("pthread_create");
	pthread_sigmask(SIG_UNBLOCK, &io, NULL);
	while (!__atomic_load_n(&owner_thread, __ATOMIC_SEQ_CST)) usleep(1000);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, owned_socket) || pipe(owned_pipe)) die("socketpair");
	owned_file = open("owned.txt", O_RDWR | O_CREAT, 0600);
	if (owned_file < 0) die("owned.txt");
	struct f_owner_ex by_thread = { F_OWNER_TID, owner_thread }, by_group = { F_OWNER_PGRP, getpgrp() };
	if (fcntl(owned_socket[0], F_SETOWN, getpid()) || fcntl(owned_socket[0], F_SETSIG, SIGRTMIN + 2)
		|| fcntl(owned_socket[0], F_SETFL, fcntl(owned_socket[0], F_GETFL) | O_ASYNC)
		|| fcntl(owned_pipe[0], F_SETOWN_EX, &by_thread) || fcntl(owned_pipe[0], F_SETSIG, SIGRTMIN + 3)
		|| fcntl(owned_file, F_SETOWN_EX, &by_group))
		die("F_SETOWN");
}

static int owner_is(int fd, const char *name, int type, pid_t pid, int signal)
{
	struct f_owner_ex owner;
	if (fcntl(fd, F_GETOWN_EX, &owner)) return fail("%s: F_GETOWN_EX: %s", name, strerror(errno));
	if (owner.type != type || owner.pid != pid) return fail("%s: owner %d/%d, not %d/%d", name, owner.type, owner.pid, type, pid);
	int now = fcntl(fd, F_GETSIG);
	return now == signal ? 0 : fail("%s: signal %d, not %d", name, now, signal);
}

static int check_owners(void)
{
	if (owner_is(owned_socket[0], "socket", F_OWNER_PID, getpid(), SIGRTMIN + 2)
		|| owner_is(owned_pipe[0], "pipe", F_OWNER_TID, owner_thread, SIGRTMIN + 3)
		|| owner_is(owned_file, "file", F_OWNER_PGRP, getpgrp(), 0))
		return -1;
	int before = io_signals;
	char c;
	if (write(owned_socket[1], "x", 1) != 1) return fail("write to the owned socket");
	for (int i = 0; i < 300 && io_signals == before; i++) usleep(10000);
	if (io_signals == before) return fail("no SIGRTMIN+2 from the owned socket");
	if (io_fd != owned_socket[0]) return fail("si_fd %d, not %d", io_fd, owned_socket[0]);
	return read(owned_socket[0], &c, 1) == 1 ? 0 : fail("read the owned socket");
}

/* ---- unlinked ---- */

static int gone_sock, gone_sender, replaced_sock, alone_sock, ghost_fifo;
static char cwd[64];

static void bind_to(int fd, const char *name)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", cwd, name);
	unlink(a.sun_path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a))) die("bind");
}

static void setup_unlinked(void)
{
	if (!getcwd(cwd, sizeof(cwd))) die("getcwd");
	gone_sock = socket(AF_UNIX, SOCK_DGRAM, 0);
	gone_sender = socket(AF_UNIX, SOCK_DGRAM, 0);
	replaced_sock = socket(AF_UNIX, SOCK_STREAM, 0);
	alone_sock = socket(AF_UNIX, SOCK_STREAM, 0);
	bind_to(gone_sock, "gone.sock");
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/gone.sock", cwd);
	if (connect(gone_sender, (struct sockaddr *)&a, sizeof(a))) die("connect");
	if (send(gone_sender, "queued", 6, 0) != 6) die("send");
	unlink("gone.sock");
	bind_to(replaced_sock, "replaced.sock");
	if (listen(replaced_sock, 4)) die("listen");
	unlink("replaced.sock");
	FILE *text = fopen("replaced.sock", "w");
	fputs("a file now", text);
	fclose(text);
	bind_to(alone_sock, "alone.sock");
	unlink("alone.sock");
	unlink("ghost.fifo");
	if (mkfifo("ghost.fifo", 0640)) die("mkfifo");
	ghost_fifo = open("ghost.fifo", O_RDWR | O_NONBLOCK);
	if (ghost_fifo < 0 || write(ghost_fifo, "unread bytes", 12) != 12) die("ghost.fifo");
	unlink("ghost.fifo");
}

static int named(int fd, const char *name, const char *what)
{
	struct sockaddr_un a;
	socklen_t len = sizeof(a);
	char want[300];
	snprintf(want, sizeof(want), "%s/%s", cwd, name);
	if (getsockname(fd, (struct sockaddr *)&a, &len)) return fail("%s: getsockname", what);
	return strcmp(a.sun_path, want) ? fail("%s: named '%s'", what, a.sun_path) : 0;
}

static int check_unlinked(void)
{
	if (named(gone_sock, "gone.sock", "deleted dgram") || named(replaced_sock, "replaced.sock", "replaced listener")
		|| named(alone_sock, "alone.sock", "deleted stream"))
		return -1;
	if (access("gone.sock", F_OK) == 0 || access("alone.sock", F_OK) == 0 || access("ghost.fifo", F_OK) == 0)
		return fail("a deleted path exists again");
	char buf[32] = { 0 };
	int text = open("replaced.sock", O_RDONLY);
	if (text < 0 || read(text, buf, sizeof(buf)) != 10 || strcmp(buf, "a file now")) return fail("replaced.sock is not the file");
	close(text);
	int listening = 0;
	socklen_t len = sizeof(listening);
	if (getsockopt(replaced_sock, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) || !listening) return fail("replaced listener does not listen");
	memset(buf, 0, sizeof(buf));
	if (recv(gone_sock, buf, sizeof(buf), MSG_DONTWAIT) != 6 || strcmp(buf, "queued")) return fail("deleted dgram lost its datagram");
	if (send(gone_sender, "again", 5, 0) != 5) return fail("send to the deleted dgram: %s", strerror(errno));
	memset(buf, 0, sizeof(buf));
	if (recv(gone_sock, buf, sizeof(buf), MSG_DONTWAIT) != 5 || strcmp(buf, "again")) return fail("deleted dgram does not receive");
	struct stat st;
	if (fstat(ghost_fifo, &st) || !S_ISFIFO(st.st_mode) || st.st_nlink != 0 || (st.st_mode & 0777) != 0640)
		return fail("ghost FIFO: mode %o links %ld", st.st_mode, (long)st.st_nlink);
	memset(buf, 0, sizeof(buf));
	if (read(ghost_fifo, buf, sizeof(buf)) != 12 || strcmp(buf, "unread bytes")) return fail("ghost FIFO lost its bytes ('%s')", buf);
	if (write(ghost_fifo, "new", 3) != 3 || read(ghost_fifo, buf, sizeof(buf)) != 3) return fail("ghost FIFO does not carry");
	return 0;
}

/* ---- lease ---- */

static int read_leased, write_leased;

static void setup_lease(void)
{
	int f = open("read-lease.txt", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (f < 0) die("read-lease.txt");
	close(f);
	read_leased = open("read-lease.txt", O_RDONLY);
	write_leased = open("write-lease.txt", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (read_leased < 0 || write_leased < 0) die("open");
	if (fcntl(read_leased, F_SETLEASE, F_RDLCK) || fcntl(write_leased, F_SETLEASE, F_WRLCK)) die("F_SETLEASE");
}

static int check_lease(void)
{
	int r = fcntl(read_leased, F_GETLEASE), w = fcntl(write_leased, F_GETLEASE);
	if (r != F_RDLCK) return fail("read lease reads %d", r);
	if (w != F_WRLCK) return fail("write lease reads %d", w);
	return 0;
}

/* ---- pidfd ---- */

static pid_t running, cloned, zombie, reaped;
static int running_fd, cloned_fd, self_fd, zombie_fd, reaped_fd;

static int pidfd_open(pid_t pid, unsigned flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }
static int pidfd_send_signal(int fd, int signal) { return (int)syscall(SYS_pidfd_send_signal, fd, signal, NULL, 0); }

static pid_t child(void)
{
	pid_t pid = fork();
	if (pid < 0) die("fork");
	if (pid == 0) {
		signal(SIGUSR1, SIG_DFL);
		for (;;) pause();
	}
	return pid;
}

/* The pid a pidfd names, from its fdinfo ("Pid:"): -1 for a process that is gone. */
static int pid_of_pidfd(int fd)
{
	char path[64], text[1024];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int f = open(path, O_RDONLY);
	ssize_t n = f < 0 ? -1 : read(f, text, sizeof(text) - 1);
	if (f >= 0) close(f);
	if (n <= 0) return -2;
	text[n] = 0;
	char *line = strstr(text, "\nPid:");
	return line ? atoi(line + 5) : -2;
}

static void setup_pidfd(void)
{
	running = child();
	running_fd = pidfd_open(running, PIDFD_NONBLOCK);
	struct clone_args args = { .flags = CLONE_PIDFD, .pidfd = (uint64_t)(uintptr_t)&cloned_fd, .exit_signal = SIGCHLD };
	cloned = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	if (cloned == 0) {
		signal(SIGUSR1, SIG_DFL);
		for (;;) pause();
	}
	self_fd = pidfd_open(getpid(), 0);
	zombie = child();
	zombie_fd = pidfd_open(zombie, 0);
	reaped = child();
	reaped_fd = pidfd_open(reaped, 0);
	if (cloned < 0 || running_fd < 0 || self_fd < 0 || zombie_fd < 0 || reaped_fd < 0) die("pidfd_open");
	kill(zombie, SIGKILL);
	kill(reaped, SIGKILL);
	if (waitpid(reaped, NULL, 0) != reaped) die("waitpid");
	siginfo_t info;
	if (waitid(P_PID, zombie, &info, WEXITED | WNOWAIT)) die("waitid");
}

static int ends_through_pidfd(int fd, pid_t pid, const char *name)
{
	if (pid_of_pidfd(fd) != pid) return fail("%s: pidfd names %d, not %d", name, pid_of_pidfd(fd), pid);
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, 0) != 0) return fail("%s: pidfd readable before the exit", name);
	if (pidfd_send_signal(fd, SIGTERM)) return fail("%s: pidfd_send_signal: %s", name, strerror(errno));
	if (poll(&p, 1, 10000) != 1) return fail("%s: pidfd not readable after the exit", name);
	siginfo_t info = { 0 };
	if (syscall(SYS_waitid, P_PIDFD, fd, &info, WEXITED, NULL)) return fail("%s: waitid P_PIDFD: %s", name, strerror(errno));
	if (info.si_pid != pid || info.si_status != SIGTERM) return fail("%s: waited %d status %d", name, info.si_pid, info.si_status);
	return 0;
}

static int check_pidfd(void)
{
	if ((fcntl(running_fd, F_GETFL) & O_NONBLOCK) == 0) return fail("running: PIDFD_NONBLOCK lost");
	if ((fcntl(cloned_fd, F_GETFL) & O_NONBLOCK) != 0) return fail("cloned: O_NONBLOCK set");
	siginfo_t info = { 0 };
	/* A non-blocking pidfd of a running child: waitid says EAGAIN rather than waiting. */
	if (syscall(SYS_waitid, P_PIDFD, running_fd, &info, WEXITED, NULL) != -1 || errno != EAGAIN) return fail("running: waitid did not say EAGAIN");
	if (pid_of_pidfd(self_fd) != getpid()) return fail("self: pidfd names %d", pid_of_pidfd(self_fd));
	if (pid_of_pidfd(reaped_fd) != -1) return fail("reaped: pidfd names %d", pid_of_pidfd(reaped_fd));
	if (pidfd_send_signal(reaped_fd, 0) != -1 || errno != ESRCH) return fail("reaped: pidfd_send_signal did not say ESRCH");
	struct pollfd p = { zombie_fd, POLLIN, 0 };
	if (pid_of_pidfd(zombie_fd) != zombie || poll(&p, 1, 0) != 1) return fail("zombie: pidfd names %d, not readable", pid_of_pidfd(zombie_fd));
	if (syscall(SYS_waitid, P_PIDFD, zombie_fd, &info, WEXITED, NULL) || info.si_pid != zombie || info.si_status != SIGKILL)
		return fail("zombie: waitid P_PIDFD: %s", strerror(errno));
	return ends_through_pidfd(running_fd, running, "running") || ends_through_pidfd(cloned_fd, cloned, "cloned");
}

/* ---- rights ---- */

static int stream_pair[2], dgram_pair[2], seqpacket_pair[2];

static void send_with(int socket, const char *data, const int *fds, int count)
{
	char control[CMSG_SPACE(2 * sizeof(int))] = { 0 };
	struct iovec iov = { (void *)data, strlen(data) };
	struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (count) {
		message.msg_control = control;
		message.msg_controllen = CMSG_SPACE(count * sizeof(int));
		struct cmsghdr *header = CMSG_FIRSTHDR(&message);
		header->cmsg_level = SOL_SOCKET;
		header->cmsg_type = SCM_RIGHTS;
		header->cmsg_len = CMSG_LEN(count * sizeof(int));
		memcpy(CMSG_DATA(header), fds, count * sizeof(int));
	}
	if (sendmsg(socket, &message, 0) != (ssize_t)iov.iov_len) die("sendmsg");
}

static int kept_peer, kept_reader;

static void setup_rights(void)
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, stream_pair) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram_pair)
		|| socketpair(AF_UNIX, SOCK_SEQPACKET, 0, seqpacket_pair))
		die("socketpair");
	int file = open("rights.txt", O_RDWR | O_CREAT | O_TRUNC, 0600), p[2], s[2];
	if (file < 0 || write(file, "0123456789", 10) != 10 || lseek(file, 3, SEEK_SET) != 3) die("rights.txt");
	if (pipe(p) || write(p[1], "pipe data", 9) != 9 || socketpair(AF_UNIX, SOCK_STREAM, 0, s)) die("pipe");
	int counter = eventfd(5, 0), inner = eventfd(7, 0);
	send_with(s[1], "inner", &inner, 1);
	close(inner);
	send_with(stream_pair[0], "file", &file, 1);
	send_with(stream_pair[0], "plain", NULL, 0);
	send_with(stream_pair[0], "pipe", &p[0], 1);
	send_with(stream_pair[0], "sock", &s[0], 1);
	send_with(stream_pair[0], "tail", NULL, 0);
	int two[] = { file, counter };
	send_with(dgram_pair[0], "two", two, 2);
	int q[2];
	if (pipe(q)) die("pipe");
	send_with(seqpacket_pair[0], "seq", &q[1], 1);
	kept_peer = s[1];
	kept_reader = q[0];
	close(file); close(p[0]); close(p[1]); close(s[0]); close(counter); close(q[1]);
}

/* Receives LENGTH bytes of DATA with COUNT descriptors (stored in FDS) from SOCKET. */
static int receive(int socket, const char *data, int *fds, int count)
{
	char control[CMSG_SPACE(4 * sizeof(int))] = { 0 }, buf[32] = { 0 };
	size_t length = strlen(data);
	struct iovec iov = { buf, length };
	struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control) };
	ssize_t n = recvmsg(socket, &message, MSG_DONTWAIT);
	if (n != (ssize_t)length || strcmp(buf, data)) return fail("received '%s' (%zd), not '%s'", buf, n, data);
	struct cmsghdr *header = CMSG_FIRSTHDR(&message);
	int got = header && header->cmsg_type == SCM_RIGHTS ? (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int)) : 0;
	if (got != count) return fail("'%s' came with %d descriptors, not %d", data, got, count);
	if (count) memcpy(fds, CMSG_DATA(header), count * sizeof(int));
	return 0;
}

static int check_rights(void)
{
	int file, pipe_end, sock, two[2], writer;
	char buf[32] = { 0 };
	if (receive(stream_pair[1], "file", &file, 1) || receive(stream_pair[1], "plain", NULL, 0)
		|| receive(stream_pair[1], "pipe", &pipe_end, 1) || receive(stream_pair[1], "sock", &sock, 1)
		|| receive(stream_pair[1], "tail", NULL, 0) || receive(dgram_pair[1], "two", two, 2)
		|| receive(seqpacket_pair[1], "seq", &writer, 1))
		return -1;
	if (write(writer, "through", 7) != 7 || read(kept_reader, buf, 7) != 7 || memcmp(buf, "through", 7)) return fail("the pipe's write end does not reach its reader");
	if (read(file, buf, 3) != 3 || memcmp(buf, "345", 3)) return fail("the file read '%.3s', not '345'", buf);
	if (read(pipe_end, buf, sizeof(buf)) != 9 || memcmp(buf, "pipe data", 9)) return fail("the pipe lost its data");
	int inner;
	uint64_t seven = 0;
	if (receive(sock, "inner", &inner, 1)) return -1;
	if (read(inner, &seven, sizeof(seven)) != 8 || seven != 7) return fail("the eventfd in flight within in flight holds %llu", (unsigned long long)seven);
	if (write(kept_peer, "hi", 2) != 2 || read(sock, buf, 2) != 2 || memcmp(buf, "hi", 2)) return fail("the socket lost its peer");
	if (write(sock, "yo", 2) != 2 || read(kept_peer, buf, 2) != 2 || memcmp(buf, "yo", 2)) return fail("the peer lost the socket");
	uint64_t value = 0;
	if (read(two[1], &value, sizeof(value)) != 8 || value != 5) return fail("the eventfd holds %llu", (unsigned long long)value);
	if (read(two[0], buf, 2) != 2 || memcmp(buf, "67", 2)) return fail("the second file descriptor is not the same description");
	if (recv(stream_pair[1], buf, 1, MSG_DONTWAIT) != -1 || recv(dgram_pair[1], buf, 1, MSG_DONTWAIT) != -1
		|| recv(seqpacket_pair[1], buf, 1, MSG_DONTWAIT) != -1)
		return fail("more queued");
	return 0;
}

/* ---- cycle, flightpidfd (refused: their checks prove the refusal took nothing from the queue) ---- */

static void setup_cycle(void)
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, stream_pair)) die("socketpair");
	send_with(stream_pair[0], "self", &stream_pair[1], 1);
}

static int check_cycle(void)
{
	int self;
	struct stat received, own;
	if (receive(stream_pair[1], "self", &self, 1)) return -1;
	if (fstat(self, &received) || fstat(stream_pair[1], &own) || received.st_ino != own.st_ino) return fail("received another socket");
	return 0;
}

static void setup_flight_pidfd(void)
{
	int self = pidfd_open(getpid(), 0);
	if (self < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, stream_pair)) die("pidfd_open");
	send_with(stream_pair[0], "pidfd", &self, 1);
	close(self);
}

static int check_flight_pidfd(void)
{
	int self;
	if (receive(stream_pair[1], "pidfd", &self, 1)) return -1;
	if (pid_of_pidfd(self) != getpid()) return fail("the pidfd names %d", pid_of_pidfd(self));
	return 0;
}

static const struct { const char *name; void (*setup)(void); int (*check)(void); } modes[] = {
	{ "paths", setup_paths, check_paths },
	{ "owners", setup_owners, check_owners },
	{ "unlinked", setup_unlinked, check_unlinked },
	{ "lease", setup_lease, check_lease },
	{ "pidfd", setup_pidfd, check_pidfd },
	{ "rights", setup_rights, check_rights },
	{ "cycle", setup_cycle, check_cycle },
	{ "flightpidfd", setup_flight_pidfd, check_flight_pidfd },
};

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: %s WORKDIR MODE\n", argv[0]); return 2; }
	if (chdir(argv[1])) die("chdir");
	mode = argv[2];
	int chosen = -1;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) if (!strcmp(modes[i].name, mode)) chosen = (int)i;
	if (chosen < 0) { fprintf(stderr, "unknown mode %s\n", mode); return 2; }
	signal(SIGPIPE, SIG_IGN);
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
		FILE *log = fopen("fdcorners.log", "a");
		if (bad[0]) fprintf(log, "CORRUPT %s %s pid=%d\n", mode, bad, getpid());
		else fprintf(log, "OK %s pid=%d\n", mode, getpid());
		fclose(log);
	}
}
