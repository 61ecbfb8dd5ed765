/* mqueue WORKDIR NAME
 * A POSIX message queue that checks itself: opens NAME (created, O_EXCL, mode 0640, 8 messages of at most 128
 * bytes) non-blocking on descriptor 7 and queues 5 messages of priorities 1, 5, 1, 9, 5. On SIGUSR1 it receives them
 * all (highest priority first, in sending order within one priority), checks texts, priorities and the queue's
 * attributes, sends them back in the order received and appends "OK pid=P" or "CORRUPT <what> pid=P" to
 * WORKDIR/mqueue.log. Writes WORKDIR/ready when set up; SIGTERM removes the queue and ends. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define FD 7
static const unsigned priorities[] = { 1, 5, 1, 9, 5 };
/* Received order: 9 (3), 5 (1), 5 (4), 1 (0), 1 (2). */
static const int received_order[] = { 3, 1, 4, 0, 2 };
static volatile sig_atomic_t check_requested, stop_requested;

static void on_usr1(int s) { (void)s; check_requested = 1; }
static void on_term(int s) { (void)s; stop_requested = 1; }
static int text(int i, char *buffer) { return sprintf(buffer, "message %d of priority %u", i, priorities[i]); }

static const char *check(void)
{
	struct mq_attr attr;
	if (mq_getattr(FD, &attr) != 0) return "getattr";
	if (attr.mq_maxmsg != 8 || attr.mq_msgsize != 128 || !(attr.mq_flags & O_NONBLOCK)) return "attributes";
	if (attr.mq_curmsgs != 5) return "count";
	char got[5][128];
	ssize_t sizes[5];
	unsigned prio[5];
	for (int i = 0; i < 5; i++) {
		sizes[i] = mq_receive(FD, got[i], sizeof(got[i]), &prio[i]);
		if (sizes[i] < 0) return "receive";
	}
	const char *bad = NULL;
	for (int i = 0; i < 5; i++) {
		char want[128];
		int n = text(received_order[i], want);
		if (sizes[i] != n || memcmp(got[i], want, n) != 0 || prio[i] != priorities[received_order[i]]) bad = "messages";
		if (mq_send(FD, got[i], sizes[i], prio[i]) != 0) return "send-back";
	}
	return bad;
}

int main(int argc, char **argv)
{
	if (argc != 3 || chdir(argv[1]) != 0) return 2;
	struct mq_attr attr = { 0, 8, 128, 0 };
	mqd_t q = mq_open(argv[2], O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, 0640, &attr);
	if (q < 0 || dup2(q, FD) != FD) { perror("mq_open"); return 1; }
	close(q);
	for (int i = 0; i < 5; i++) {
		char buffer[128];
		if (mq_send(FD, buffer, text(i, buffer), priorities[i]) != 0) { perror("mq_send"); return 1; }
	}
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	FILE *f = fopen("ready", "w");
	fprintf(f, "%d\n", getpid());
	fclose(f);
	while (!stop_requested) {
		pause();
		if (check_requested) {
			check_requested = 0;
			const char *bad = check();
			FILE *log = fopen("mqueue.log", "a");
			if (bad) fprintf(log, "CORRUPT %s pid=%d\n", bad, getpid());
			else fprintf(log, "OK pid=%d\n", getpid());
			fclose(log);
		}
	}
	mq_unlink(argv[2]);
	return 0;
}
