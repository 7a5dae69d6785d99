/*
 * The sandbox's PID 1: holds the container's namespaces open and does nothing
 * else. It is built with -nostdlib so that the image is a few KiB and needs
 * no libc in a FROM scratch image; hence the raw system calls below.
 *
 * The signals are blocked and taken with rt_sigtimedwait rather than caught
 * by handlers: the kernel drops a signal sent to a namespace's init unless
 * the signal has a handler or is blocked, and waiting synchronously needs no
 * sa_restorer trampoline, which libc would otherwise supply.
 */

#if defined(__x86_64__)
#define SYS_RT_SIGPROCMASK 14
#define SYS_WAIT4 61
#define SYS_RT_SIGTIMEDWAIT 128
#define SYS_EXIT_GROUP 231

static long sys4(long n, long a, long b, long c, long d)
{
	register long r10 __asm__("r10") = d;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
}

/* The kernel enters with the stack 16-byte aligned; C expects it after a call. */
__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"	xor %ebp, %ebp\n"
	"	and $-16, %rsp\n"
	"	call pause_main\n"
	"	hlt\n");

#elif defined(__aarch64__)
#define SYS_RT_SIGPROCMASK 135
#define SYS_RT_SIGTIMEDWAIT 137
#define SYS_WAIT4 260
#define SYS_EXIT_GROUP 94

static long sys4(long n, long a, long b, long c, long d)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3)
			 : "memory");
	return x0;
}

__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"	mov x29, #0\n"
	"	mov x30, #0\n"
	"	bl pause_main\n"
	"1:	b 1b\n");

#else
#error "pause.c knows the system call numbers of x86_64 and aarch64 only"
#endif

#define SIGINT 2
#define SIGTERM 15
#define SIGCHLD 17
#define SIG_BLOCK 0
#define WNOHANG 1
#define EINTR 4

#define BIT(sig) (1UL << ((sig) - 1))

__attribute__((noreturn, used)) void pause_main(void)
{
	unsigned long set = BIT(SIGINT) | BIT(SIGTERM) | BIT(SIGCHLD);
	/* siginfo_t is 128 bytes; only the signal number, returned, is read. */
	long info[16];

	sys4(SYS_RT_SIGPROCMASK, SIG_BLOCK, (long)&set, 0, sizeof set);
	for (;;) {
		long sig = sys4(SYS_RT_SIGTIMEDWAIT, (long)&set, (long)info, 0,
				sizeof set);
		if (sig == SIGINT || sig == SIGTERM)
			sys4(SYS_EXIT_GROUP, 0, 0, 0, 0);
		if (sig == SIGCHLD || sig == -EINTR) {
			/* Orphans re-parented to us would stay zombies otherwise. */
			while (sys4(SYS_WAIT4, -1, 0, WNOHANG, 0) > 0)
				;
		}
	}
}
