/* regcheck WORKDIR
 * Proves that registers survive a checkpoint: it loads known patterns into general-purpose, SSE/AVX and (where
 * the CPU has them) AVX-512 vector and mask registers, then sleeps in a loop of raw nanosleep system calls
 * written in assembly so that nothing but the kernel (and a checkpoint) touches those registers. Every loop it
 * compares them with the patterns; SIGUSR1 asks it to report, which it does by leaving the loop with the
 * comparison result and appending "OK pid=P" or "CORRUPT <register> pid=P" to WORKDIR/regcheck.log.
 * Writes its pid to WORKDIR/ready before it starts sleeping. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "selfcheck.h"

static volatile int report_requested;
static void on_usr1(int s) { (void)s; report_requested = 1; }

static const uint64_t gp_pattern = 0x1122334455667788ull;

static const struct timespec tick = { 0, 20 * 1000 * 1000 };

/* Both sleep until asked to report, with r12-r15 and ymm8/ymm15 (and zmm16/zmm31, k1/k7 with AVX-512) holding
 * patterns; they return 0 when every register still holds its pattern, or a code naming the first that does
 * not. Each is compiled for its instruction set only, so the program runs on CPUs without AVX-512. */
__attribute__((target("avx512f"))) static int sleep_avx512(void)
{
	int result;
	{
		__asm__ volatile(
			"mov %[gp], %%r12\n\t mov %[gp], %%r13\n\t mov %[gp], %%r14\n\t mov %[gp], %%r15\n\t"
			"vpbroadcastq %[gp], %%zmm16\n\t vpbroadcastq %[gp], %%zmm31\n\t"
			"vpbroadcastq %[gp], %%ymm8\n\t vpbroadcastq %[gp], %%ymm15\n\t"
			"mov $0x5a5a, %%eax\n\t kmovw %%eax, %%k1\n\t kmovw %%eax, %%k7\n\t"
			"1:\n\t"
			"mov $35, %%eax\n\t mov %[tick], %%rdi\n\t xor %%esi, %%esi\n\t syscall\n\t"
			"mov $1, %[r]\n\t cmp %[gp], %%r12\n\t jne 2f\n\t cmp %[gp], %%r15\n\t jne 2f\n\t"
			"mov $2, %[r]\n\t vmovq %%xmm8, %%rax\n\t cmp %[gp], %%rax\n\t jne 2f\n\t"
			"vextracti128 $1, %%ymm15, %%xmm0\n\t vmovq %%xmm0, %%rax\n\t cmp %[gp], %%rax\n\t jne 2f\n\t"
			"mov $3, %[r]\n\t vextracti64x4 $1, %%zmm16, %%ymm0\n\t vextracti128 $1, %%ymm0, %%xmm0\n\t vmovq %%xmm0, %%rax\n\t cmp %[gp], %%rax\n\t jne 2f\n\t"
			"vextracti64x4 $1, %%zmm31, %%ymm0\n\t vmovq %%xmm0, %%rax\n\t cmp %[gp], %%rax\n\t jne 2f\n\t"
			"mov $4, %[r]\n\t kmovw %%k1, %%eax\n\t cmp $0x5a5a, %%eax\n\t jne 2f\n\t kmovw %%k7, %%eax\n\t cmp $0x5a5a, %%eax\n\t jne 2f\n\t"
			"mov $0, %[r]\n\t"
			"cmpl $0, %[req]\n\t je 1b\n\t"
			"2:\n\t"
			: [r] "=&r"(result)
			: [gp] "r"(gp_pattern), [tick] "r"(&tick), [req] "m"(report_requested)
			: "rax", "rdi", "rsi", "rcx", "r11", "r12", "r13", "r14", "r15", "xmm0", "xmm8", "xmm15",
			  "xmm16", "xmm31", "k1", "k7", "memory", "cc");
	}
	return result;
}

__attribute__((target("avx2"))) static int sleep_avx2(void)
{
	int result;
	{
		__asm__ volatile(
			"mov %[gp], %%r12\n\t mov %[gp], %%r13\n\t mov %[gp], %%r14\n\t mov %[gp], %%r15\n\t"
			"vmovq %[gp], %%xmm8\n\t vpbroadcastq %%xmm8, %%ymm8\n\t vmovdqa %%ymm8, %%ymm15\n\t"
			"1:\n\t"
			"mov $35, %%eax\n\t mov %[tick], %%rdi\n\t xor %%esi, %%esi\n\t syscall\n\t"
			"mov $1, %[r]\n\t cmp %[gp], %%r12\n\t jne 2f\n\t cmp %[gp], %%r15\n\t jne 2f\n\t"
			"mov $2, %[r]\n\t vmovq %%xmm8, %%rax\n\t cmp %[gp], %%rax\n\t jne 2f\n\t"
			"vextracti128 $1, %%ymm15, %%xmm0\n\t vmovq %%xmm0, %%rax\n\t cmp %[gp], %%rax\n\t jne 2f\n\t"
			"mov $0, %[r]\n\t"
			"cmpl $0, %[req]\n\t je 1b\n\t"
			"2:\n\t"
			: [r] "=&r"(result)
			: [gp] "r"(gp_pattern), [tick] "r"(&tick), [req] "m"(report_requested)
			: "rax", "rdi", "rsi", "rcx", "r11", "r12", "r13", "r14", "r15", "xmm0", "xmm8", "xmm15", "memory", "cc");
	}
	return result;
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: %s WORKDIR\n", argv[0]); return 2; }
	if (chdir(argv[1])) { perror("chdir"); return 1; }
	__builtin_cpu_init();
	int avx512 = __builtin_cpu_supports("avx512f");
	if (!__builtin_cpu_supports("avx2")) { fprintf(stderr, "needs AVX2\n"); return 1; }
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	announce_ready(getpid());
	static const char *names[] = { "none", "general-purpose", "sse-avx", "avx512-zmm", "avx512-mask" };
	for (;;) {
		int bad = avx512 ? sleep_avx512() : sleep_avx2();
		report_requested = 0;
		char line[96];
		int n = bad ? snprintf(line, sizeof(line), "CORRUPT %s pid=%d\n", names[bad], getpid())
			    : snprintf(line, sizeof(line), "OK%s pid=%d\n", avx512 ? " avx512" : "", getpid());
		FILE *log = fopen("regcheck.log", "a");
		fputs(line, log);
		fclose(log);
		(void)n;
	}
}
