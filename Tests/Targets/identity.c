/* identity WORKDIR
 * A process that is somebody else and lives somewhere else. As root it chroots into WORKDIR and works in /inner
 * there, then takes supplementary groups 1001 and 1002, gids 1000/1001/1002 and uids 1000/1001/1002 (real,
 * effective, saved) with securebits KEEP_CAPS and NOROOT (locked), keeps CAP_NET_BIND_SERVICE as its only
 * capability (permitted and effective), and only then
 * sets what a change of credentials resets: its parent-death signal (SIGUSR2, ignored) and its dumpable flag (1).
 * On SIGUSR1 it checks all of that, and that / is WORKDIR (it finds /inner/marker), and appends "OK pid=P" or
 * "CORRUPT <what> pid=P" to WORKDIR/identity.log through a descriptor opened beforehand. Writes WORKDIR/ready when
 * set up. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t check_requested;
static void on_usr1(int s) { (void)s; check_requested = 1; }

static const gid_t groups[] = { 1001, 1002 };
static const __u32 kept = 1u << CAP_NET_BIND_SERVICE;
/* Keeps its capabilities through the change of uids, and root's special treatment at exec is off and locked. */
static const int securebits = SECBIT_KEEP_CAPS | SECBIT_NOROOT | SECBIT_NOROOT_LOCKED;

static int capabilities(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
	return (int)syscall(SYS_capget, &header, data);
}

static void check(int log)
{
	char problem[160] = "";
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid, listed[8];
	struct __user_cap_data_struct caps[2];
	char cwd[PATH_MAX];
	int pdeath = 0;
	struct stat st;
	int count = getgroups(8, listed);
	getresuid(&ruid, &euid, &suid);
	getresgid(&rgid, &egid, &sgid);
	prctl(PR_GET_PDEATHSIG, &pdeath);
	if (ruid != 1000 || euid != 1001 || suid != 1002)
		snprintf(problem, sizeof(problem), "uids %d/%d/%d", ruid, euid, suid);
	else if (rgid != 1000 || egid != 1001 || sgid != 1002)
		snprintf(problem, sizeof(problem), "gids %d/%d/%d", rgid, egid, sgid);
	else if (count != 2 || listed[0] != groups[0] || listed[1] != groups[1])
		snprintf(problem, sizeof(problem), "%d supplementary groups", count);
	else if (capabilities(caps) != 0 || caps[0].permitted != kept || caps[0].effective != kept || caps[0].inheritable != 0
		 || caps[1].permitted || caps[1].effective)
		snprintf(problem, sizeof(problem), "capabilities %x/%x", caps[0].permitted, caps[0].effective);
	else if (prctl(PR_GET_SECUREBITS) != securebits)
		snprintf(problem, sizeof(problem), "securebits %#x", prctl(PR_GET_SECUREBITS));
	else if (pdeath != SIGUSR2)
		snprintf(problem, sizeof(problem), "parent-death signal %d", pdeath);
	else if (prctl(PR_GET_DUMPABLE) != 1)
		snprintf(problem, sizeof(problem), "dumpable %d", prctl(PR_GET_DUMPABLE));
	else if (!getcwd(cwd, sizeof(cwd)) || strcmp(cwd, "/inner") != 0)
		snprintf(problem, sizeof(problem), "working directory is not /inner");
	else if (stat("/inner/marker", &st) != 0)
		snprintf(problem, sizeof(problem), "the root directory is not the work directory");
	if (problem[0]) dprintf(log, "CORRUPT %s pid=%d\n", problem, getpid());
	else dprintf(log, "OK pid=%d\n", getpid());
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/identity.log", argv[1]);
	int log = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	snprintf(path, sizeof(path), "%s/inner", argv[1]);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/inner/marker", argv[1]);
	close(open(path, O_WRONLY | O_CREAT, 0644));
	/* The new uids must be able to write ready there. */
	if (log < 0 || chmod(argv[1], 0777) != 0 || chroot(argv[1]) != 0 || chdir("/inner") != 0) return 1;

	if (setgroups(2, groups) != 0 || setresgid(1000, 1001, 1002) != 0) return 1;
	if (prctl(PR_SET_SECUREBITS, securebits) != 0 || setresuid(1000, 1001, 1002) != 0) return 1;
	struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { { kept, kept, 0 }, { 0, 0, 0 } };
	if (syscall(SYS_capset, &header, data) != 0) return 1;

	signal(SIGUSR2, SIG_IGN);
	if (prctl(PR_SET_PDEATHSIG, SIGUSR2) != 0 || prctl(PR_SET_DUMPABLE, 1) != 0) return 1;
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);

	FILE *ready = fopen("/ready.tmp", "w");
	if (!ready) return 1;
	fprintf(ready, "%d\n", getpid());
	fclose(ready);
	rename("/ready.tmp", "/ready");
	for (;;) {
		pause();
		if (check_requested) {
			check_requested = 0;
			check(log);
		}
	}
}
