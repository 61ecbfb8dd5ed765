/* sysvipc WORKDIR KEYBASE MODE
 * System V IPC that checks itself after a restore. MODE "all" (run it in an IPC namespace of its own) makes:
 *   segment A - key KEYBASE+1, 3 pages + 100 bytes, mode 0640, attached read-write; a pattern in it;
 *   segment B - key KEYBASE+2, 1 page, mode 0604, attached read-only (SHM_RDONLY): writing it is refused;
 *   segment C - key KEYBASE+3, 2 pages, mode 0600, made as user 4321 group 8765 (its creator), given to 1234:5678,
 *               filled through a passing attachment, not attached;
 *   segment D - key KEYBASE+4, 1 page, attached, then removed (IPC_RMID): marked, its key private;
 *   set S     - key KEYBASE+5, 3 semaphores valued 7 0 42, mode 0660, owned by 1234:5678;
 *   queue Q   - key KEYBASE+6, mode 0620, holding 4 messages of types 1, 2, 1 and 3 (one of 300 binary bytes).
 * MODE "shm" (the host's IPC namespace) makes segments A, B and D only: what the tree attaches; MODE "named" makes
 * them and set S and queue Q (saved in the host's namespace when Checkpoint-Process names their keys, -IpcKey).
 * In MODE "all", objects made and removed first make the ids not the first a new namespace gives.
 * Then it forks a child, which keeps the attachments it inherits. On SIGUSR1 the parent bumps a round number in
 * segment A and signals the child, which checks the segments it sees at the very same addresses and acknowledges in
 * A; the parent checks every object (id, key, mode, owner, creator, contents; the queue's messages are received in
 * order and sent back) and appends "OK pid=P" or "CORRUPT <what> pid=P" to WORKDIR/sysvipc.log. Writes the ids to
 * WORKDIR/ids ("A B C D S Q", -1 for none) and WORKDIR/ready when set up. SIGTERM ends both. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

#define PAGE 4096
#define A_SIZE (3 * PAGE + 100)

struct header { volatile int round; volatile int ack; volatile int bad; };

static key_t base;
static int all, named;
static int id_a, id_b, id_c = -1, id_d, id_s = -1, id_q = -1;
static unsigned char *a, *b, *d;
static pid_t child_pid;
static volatile sig_atomic_t check_requested, stop_requested;

static void on_usr1(int s) { (void)s; check_requested = 1; }
static void on_term(int s) { (void)s; stop_requested = 1; }
static void sleep_ms(int ms) { struct timespec t = { 0, ms * 1000000L }; nanosleep(&t, NULL); }
static unsigned char pattern(size_t i, int seed) { return (unsigned char)(i * 13 + seed); }

static const char *check_pattern(const unsigned char *p, size_t from, size_t size, int seed, const char *name)
{
	for (size_t i = from; i < size; i++)
		if (p[i] != pattern(i, seed)) return name;
	return NULL;
}

/* What the child and the parent both check: the attachments at their addresses. */
static const char *check_attached(void)
{
	const char *bad;
	if ((bad = check_pattern(a, sizeof(struct header), A_SIZE, 1, "A-contents"))) return bad;
	if ((bad = check_pattern(b, 0, PAGE, 2, "B-contents"))) return bad;
	if ((bad = check_pattern(d, 0, PAGE, 4, "D-contents"))) return bad;
	/* B is attached read-only: it may not become writable. */
	if (mprotect(b, PAGE, PROT_READ | PROT_WRITE) == 0 || errno != EACCES) return "B-writable";
	return NULL;
}

static void child(void)
{
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGTERM, SIG_DFL);
	struct header *h = (struct header *)a;
	for (;;) {
		pause();
		if (!check_requested) continue;
		check_requested = 0;
		if (check_attached()) h->bad = 1;
		h->ack = h->round;
	}
}

static const char *check_perm(struct ipc_perm *p, int key, int mode, int uid, int gid, int cuid, int cgid, const char *name)
{
	if (p->__key != key || (p->mode & 01777) != mode || (int)p->uid != uid || (int)p->gid != gid || (int)p->cuid != cuid || (int)p->cgid != cgid) {
		static char what[160];
		snprintf(what, sizeof(what), "%s-perm(key=%x,mode=%o,uid=%d,gid=%d,cuid=%d,cgid=%d)", name, p->__key, p->mode, p->uid, p->gid, p->cuid, p->cgid);
		return what;
	}
	return NULL;
}

static const char *check_segment(int id, int key, int mode, int uid, int gid, int cuid, int cgid, size_t size, const char *name)
{
	struct shmid_ds ds;
	if (shmctl(id, IPC_STAT, &ds) != 0) return name;
	if (ds.shm_segsz != size) return name;
	return check_perm(&ds.shm_perm, key, mode, uid, gid, cuid, cgid, name);
}

static const char *msg_text(int i, char *buffer, size_t *size, long *type)
{
	static const long types[] = { 1, 2, 1, 3 };
	*type = types[i];
	if (i == 3) {
		for (int j = 0; j < 300; j++) buffer[j] = (char)(j * 7);
		*size = 300;
	} else {
		*size = (size_t)sprintf(buffer, "message %d of type %ld", i, types[i]);
	}
	return buffer;
}

static const char *check_queue(void)
{
	struct msqid_ds ds;
	if (msgctl(id_q, IPC_STAT, &ds) != 0) return "Q-stat";
	const char *bad = check_perm(&ds.msg_perm, base + 6, 0620, 0, 0, 0, 0, "Q");
	if (bad) return bad;
	if (ds.msg_qnum != 4) return "Q-count";
	struct { long type; char text[512]; } got[4];
	ssize_t sizes[4];
	for (int i = 0; i < 4; i++) {
		sizes[i] = msgrcv(id_q, &got[i], sizeof(got[i].text), 0, IPC_NOWAIT);
		if (sizes[i] < 0) return "Q-receive";
	}
	const char *result = NULL;
	for (int i = 0; i < 4; i++) {
		char want[512];
		size_t size;
		long type;
		msg_text(i, want, &size, &type);
		if (got[i].type != type || (size_t)sizes[i] != size || memcmp(got[i].text, want, size) != 0) result = "Q-messages";
		if (msgsnd(id_q, &got[i], (size_t)sizes[i], IPC_NOWAIT) != 0) return "Q-send-back";
	}
	return result;
}

static const char *check_all(void)
{
	struct header *h = (struct header *)a;
	const char *bad;
	h->round++;
	h->bad = 0;
	kill(child_pid, SIGUSR1);
	for (int i = 0; h->ack != h->round; i++) {
		if (i > 1000) return "child-ack";
		sleep_ms(5);
	}
	if (h->bad) return "child-sees";
	if ((bad = check_attached())) return bad;
	if ((bad = check_segment(id_a, base + 1, 0640, 0, 0, 0, 0, A_SIZE, "A"))) return bad;
	if ((bad = check_segment(id_b, base + 2, 0604, 0, 0, 0, 0, PAGE, "B"))) return bad;
	if ((bad = check_segment(id_d, IPC_PRIVATE, 01000 | 0600, 0, 0, 0, 0, PAGE, "D"))) return bad;
	if (all) {
		if ((bad = check_segment(id_c, base + 3, 0600, 1234, 5678, 4321, 8765, 2 * PAGE, "C"))) return bad;
		unsigned char *c = shmat(id_c, NULL, SHM_RDONLY);
		if (c == (void *)-1) return "C-attach";
		bad = check_pattern(c, 0, 2 * PAGE, 3, "C-contents");
		shmdt(c);
		if (bad) return bad;
	} else if (!named) {
		return NULL;
	}
	struct semid_ds sds;
	if (semctl(id_s, 0, IPC_STAT, &sds) != 0) return "S-stat";
	if ((bad = check_perm(&sds.sem_perm, base + 5, 0660, 1234, 5678, 0, 0, "S"))) return bad;
	unsigned short values[3];
	if (sds.sem_nsems != 3 || semctl(id_s, 0, GETALL, values) != 0) return "S-count";
	if (values[0] != 7 || values[1] != 0 || values[2] != 42) return "S-values";
	return check_queue();
}

static int make_segment(int key, size_t size, int mode)
{
	int id = shmget(key, size, IPC_CREAT | IPC_EXCL | mode);
	if (id < 0) die("shmget");
	return id;
}

static unsigned char *attach_filled(int id, size_t size, int seed, int readonly)
{
	unsigned char *p = shmat(id, NULL, 0);
	if (p == (void *)-1) die("shmat");
	for (size_t i = 0; i < size; i++) p[i] = pattern(i, seed);
	if (readonly) {
		shmdt(p);
		p = shmat(id, NULL, SHM_RDONLY);
		if (p == (void *)-1) die("shmat read-only");
	}
	return p;
}

static void set_owner(int id, int uid, int gid, int sem)
{
	if (sem) {
		struct semid_ds ds;
		if (semctl(id, 0, IPC_STAT, &ds) != 0) die("semctl IPC_STAT");
		ds.sem_perm.uid = uid; ds.sem_perm.gid = gid;
		if (semctl(id, 0, IPC_SET, &ds) != 0) die("semctl IPC_SET");
	} else {
		struct shmid_ds ds;
		if (shmctl(id, IPC_STAT, &ds) != 0) die("shmctl IPC_STAT");
		ds.shm_perm.uid = uid; ds.shm_perm.gid = gid;
		if (shmctl(id, IPC_SET, &ds) != 0) die("shmctl IPC_SET");
	}
}

int main(int argc, char **argv)
{
	if (argc != 4 || chdir(argv[1]) != 0) return 2;
	base = (key_t)strtol(argv[2], NULL, 0);
	all = strcmp(argv[3], "all") == 0;
	named = strcmp(argv[3], "named") == 0;
	if (all) {
		/* Objects made and removed first: the ids used next are not the first ones a new namespace gives. */
		shmctl(shmget(IPC_PRIVATE, PAGE, 0600), IPC_RMID, NULL);
		shmctl(shmget(IPC_PRIVATE, PAGE, 0600), IPC_RMID, NULL);
		semctl(semget(IPC_PRIVATE, 1, 0600), 0, IPC_RMID);
		msgctl(msgget(IPC_PRIVATE, 0600), IPC_RMID, NULL);
	}

	id_a = make_segment(base + 1, A_SIZE, 0640);
	a = attach_filled(id_a, A_SIZE, 1, 0);
	memset(a, 0, sizeof(struct header));
	id_b = make_segment(base + 2, PAGE, 0604);
	b = attach_filled(id_b, PAGE, 2, 1);
	id_d = make_segment(base + 4, PAGE, 0600);
	d = attach_filled(id_d, PAGE, 4, 0);
	if (shmctl(id_d, IPC_RMID, NULL) != 0) die("IPC_RMID");
	if (all) {
		/* C is made by another user, then given to a third: creator and owner differ. */
		if (setegid(8765) != 0 || seteuid(4321) != 0) die("seteuid");
		id_c = make_segment(base + 3, 2 * PAGE, 0600);
		if (seteuid(0) != 0 || setegid(0) != 0) die("seteuid back");
		shmdt(attach_filled(id_c, 2 * PAGE, 3, 0));
		set_owner(id_c, 1234, 5678, 0);
	}
	if (all || named) {
		id_s = semget(base + 5, 3, IPC_CREAT | IPC_EXCL | 0660);
		if (id_s < 0) die("semget");
		unsigned short values[3] = { 7, 0, 42 };
		if (semctl(id_s, 0, SETALL, values) != 0) die("SETALL");
		set_owner(id_s, 1234, 5678, 1);
		id_q = msgget(base + 6, IPC_CREAT | IPC_EXCL | 0620);
		if (id_q < 0) die("msgget");
		for (int i = 0; i < 4; i++) {
			struct { long type; char text[512]; } m;
			size_t size;
			msg_text(i, m.text, &size, &m.type);
			if (msgsnd(id_q, &m, size, 0) != 0) die("msgsnd");
		}
	}

	child_pid = fork();
	if (child_pid == 0) child();

	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);

	FILE *f = fopen("ids", "w");
	fprintf(f, "%d %d %d %d %d %d\n", id_a, id_b, id_c, id_d, id_s, id_q);
	fclose(f);
	f = fopen("ready", "w");
	fprintf(f, "%d\n", getpid());
	fclose(f);

	while (!stop_requested) {
		pause();
		if (check_requested) {
			check_requested = 0;
			const char *bad = check_all();
			FILE *log = fopen("sysvipc.log", "a");
			if (bad) fprintf(log, "CORRUPT %s pid=%d\n", bad, getpid());
			else fprintf(log, "OK pid=%d\n", getpid());
			fclose(log);
		}
	}
	kill(child_pid, SIGKILL);
	waitpid(child_pid, NULL, 0);
	return 0;
}
