/* threadns: a process one thread of which is in a UTS namespace of its own (unshare(CLONE_NEWUTS) in that thread
 * alone), which CriuPS refuses: it restores one set of namespaces per process. Writes its pid to ./ready once the
 * thread has unshared, then sleeps. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "selfcheck.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t unshared = PTHREAD_COND_INITIALIZER;
static int done;

static void *apart(void *arg)
{
	(void)arg;
	if (unshare(CLONE_NEWUTS) != 0) die("unshare(CLONE_NEWUTS)");
	if (sethostname("criups-thread", strlen("criups-thread")) != 0) die("sethostname");
	pthread_mutex_lock(&lock);
	done = 1;
	pthread_cond_signal(&unshared);
	pthread_mutex_unlock(&lock);
	for (;;) pause();
	return NULL;
}

int main(void)
{
	pthread_t thread;
	if (pthread_create(&thread, NULL, apart, NULL) != 0) die("pthread_create");
	pthread_mutex_lock(&lock);
	while (!done) pthread_cond_wait(&unshared, &lock);
	pthread_mutex_unlock(&lock);
	announce_ready(getpid());
	for (;;) pause();
}
