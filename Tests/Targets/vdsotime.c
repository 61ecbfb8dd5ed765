/* vdsotime WORKDIR [lookup-only]
 * Proves that the time functions of the vDSO answer correctly after a restore, whichever kernel build's vDSO the
 * image holds. It calls clock_gettime (realtime and monotonic), gettimeofday, time and getcpu two ways: through glibc,
 * which looked the vDSO up at start-up and keeps pointers into it, and through the entry points it finds itself, at
 * each check, in the ELF image at AT_SYSINFO_EHDR. Each answer must lie between two answers of the system call
 * itself (getcpu must name a CPU of this machine). With lookup-only it uses the second way alone: a test that puts
 * another build's vDSO into the image of a process that started here leaves glibc's pointers aimed at this build's
 * layout, which no restore can know of (a process that started on the other build has them right). On SIGUSR1 it checks and appends "OK vdso pid=P" or "CORRUPT <what> pid=P" to
 * WORKDIR/vdsotime.log; it checks once before it writes its pid to WORKDIR/ready, and exits 0 on SIGTERM. */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t check_requested, stop_requested;
static void on_usr1(int s) { (void)s; check_requested = 1; }
static void on_term(int s) { (void)s; stop_requested = 1; }

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);
typedef int (*gettimeofday_fn)(struct timeval *, void *);
typedef time_t (*time_fn)(time_t *);
typedef int (*getcpu_fn)(unsigned *, unsigned *, void *);

/* The address of an exported function of the vDSO image mapped at `base`, read as the dynamic loader does. */
static void *vdso_function(uintptr_t base, const char *name)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
	uintptr_t load = 0;
	const Elf64_Dyn *dyn = NULL;
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && !load) load = base + ph[i].p_offset - ph[i].p_vaddr;
		if (ph[i].p_type == PT_DYNAMIC) dyn = (const Elf64_Dyn *)(base + ph[i].p_offset);
	}
	if (!load || !dyn) return NULL;
	const Elf64_Sym *sym = NULL;
	const char *str = NULL;
	const uint32_t *hash = NULL;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		if (dyn->d_tag == DT_SYMTAB) sym = (const Elf64_Sym *)(load + dyn->d_un.d_ptr);
		if (dyn->d_tag == DT_STRTAB) str = (const char *)(load + dyn->d_un.d_ptr);
		if (dyn->d_tag == DT_HASH) hash = (const uint32_t *)(load + dyn->d_un.d_ptr);
	}
	if (!sym || !str || !hash) return NULL;
	for (uint32_t i = 0; i < hash[1]; i++)
		if (ELF64_ST_TYPE(sym[i].st_info) == STT_FUNC && sym[i].st_shndx != SHN_UNDEF && !strcmp(str + sym[i].st_name, name))
			return (void *)(load + sym[i].st_value);
	return NULL;
}

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

static const char *check_clock(clock_gettime_fn fn, clockid_t clock)
{
	struct timespec before, got, after;
	syscall(SYS_clock_gettime, clock, &before);
	if (fn(clock, &got)) return "failed";
	syscall(SYS_clock_gettime, clock, &after);
	return ns(got) < ns(before) || ns(got) > ns(after) ? "out of range" : NULL;
}

static const char *check_gettimeofday(gettimeofday_fn fn)
{
	struct timeval before, got, after;
	syscall(SYS_gettimeofday, &before, NULL);
	if (fn(&got, NULL)) return "failed";
	syscall(SYS_gettimeofday, &after, NULL);
	long long b = before.tv_sec * 1000000LL + before.tv_usec, g = got.tv_sec * 1000000LL + got.tv_usec, a = after.tv_sec * 1000000LL + after.tv_usec;
	return g < b || g > a ? "out of range" : NULL;
}

static const char *check_time(time_fn fn)
{
	time_t before = syscall(SYS_time, NULL);
	time_t got = fn(NULL);
	time_t after = syscall(SYS_time, NULL);
	return got < before || got > after ? "out of range" : NULL;
}

static const char *check_getcpu(getcpu_fn fn)
{
	long cpus = sysconf(_SC_NPROCESSORS_CONF);
	/* The thread may move between two calls: the vDSO's answer must name a CPU, and agree with the system call's
	 * once in a while. */
	for (int i = 0; i < 1000; i++) {
		unsigned cpu = ~0u, node = ~0u, sys_cpu = ~0u, sys_node = ~0u;
		if (fn(&cpu, &node, NULL)) return "failed";
		if (cpu >= (unsigned)cpus) return "no such cpu";
		syscall(SYS_getcpu, &sys_cpu, &sys_node, NULL);
		if (cpu == sys_cpu && node == sys_node) return NULL;
	}
	return "never agrees with the system call";
}

static int glibc_getcpu(unsigned *cpu, unsigned *node, void *unused)
{
	(void)unused;
	return getcpu(cpu, node);
}

static int glibc_gettimeofday(struct timeval *tv, void *tz) { return gettimeofday(tv, tz); }

static int lookup_only;

static const char *check(void)
{
	static char what[96];
	const char *bad;
#define CHECK(name, call) if ((bad = (call))) { snprintf(what, sizeof(what), "%s:%s", name, bad); return what; }
	if (!lookup_only) {
		CHECK("glibc-clock_gettime-realtime", check_clock(clock_gettime, CLOCK_REALTIME));
		CHECK("glibc-clock_gettime-monotonic", check_clock(clock_gettime, CLOCK_MONOTONIC));
		CHECK("glibc-gettimeofday", check_gettimeofday(glibc_gettimeofday));
		CHECK("glibc-time", check_time(time));
		CHECK("glibc-getcpu", check_getcpu(glibc_getcpu));
	}

	uintptr_t base = getauxval(AT_SYSINFO_EHDR);
	if (!base) return "no AT_SYSINFO_EHDR";
	clock_gettime_fn cg = vdso_function(base, "__vdso_clock_gettime");
	gettimeofday_fn gtod = vdso_function(base, "__vdso_gettimeofday");
	time_fn t = vdso_function(base, "__vdso_time");
	getcpu_fn gc = vdso_function(base, "__vdso_getcpu");
	if (!cg || !gtod || !t || !gc) return "vdso-symbols-missing";
	CHECK("vdso-clock_gettime-realtime", check_clock(cg, CLOCK_REALTIME));
	CHECK("vdso-clock_gettime-monotonic", check_clock(cg, CLOCK_MONOTONIC));
	CHECK("vdso-gettimeofday", check_gettimeofday(gtod));
	CHECK("vdso-time", check_time(t));
	CHECK("vdso-getcpu", check_getcpu(gc));
#undef CHECK
	return NULL;
}

static void report(int log)
{
	char line[160];
	const char *bad = check();
	int n = bad ? snprintf(line, sizeof(line), "CORRUPT %s pid=%d\n", bad, getpid())
		    : snprintf(line, sizeof(line), "OK vdso pid=%d\n", getpid());
	if (write(log, line, n) != n) _exit(3);
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR [lookup-only]\n", argv[0]); return 2; }
	lookup_only = argc > 2 && !strcmp(argv[2], "lookup-only");
	char path[4096];
	snprintf(path, sizeof(path), "%s/vdsotime.log", argv[1]);
	int log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (log < 0) { perror("log"); return 1; }
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	report(log);

	snprintf(path, sizeof(path), "%s/ready", argv[1]);
	FILE *ready = fopen(path, "w");
	if (!ready) { perror("ready"); return 1; }
	fprintf(ready, "%d\n", getpid());
	fclose(ready);

	struct timespec tick = { 0, 20 * 1000 * 1000 };
	while (!stop_requested) {
		if (check_requested) { check_requested = 0; report(log); }
		nanosleep(&tick, NULL);
	}
	report(log);
	return 0;
}
