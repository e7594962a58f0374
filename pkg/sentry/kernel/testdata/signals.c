/* Exercises malloc (brk and mmap), a __thread variable, a signal handler
 * that returns (rt_sigreturn) and a SIGSEGV handler that exits. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static __thread int tls_counter = 5;
static volatile sig_atomic_t usr1_seen;

static void say(const char *s) { write(1, s, strlen(s)); }

static void on_usr1(int sig) { usr1_seen = sig; }

static void on_segv(int sig, siginfo_t *si, void *uc) {
	char buf[128];
	(void)uc;
	int n = snprintf(buf, sizeof buf, "segv sig=%d addr=%p code=%d tls=%d\n",
	                 sig, si->si_addr, si->si_code, tls_counter);
	write(1, buf, n);
	_exit(42);
}

int main(void) {
	char *small = malloc(100);
	char *big = malloc(1 << 20); /* mmap-backed */
	if (!small || !big) return 1;
	memset(small, 'a', 100);
	memset(big, 'b', 1 << 20);
	if (small[99] != 'a' || big[(1 << 20) - 1] != 'b') return 2;
	free(big);
	tls_counter++;

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	if (usr1_seen != SIGUSR1) return 3;
	say("usr1 handled\n");

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
	*(volatile int *)0x10 = 1;
	return 4;
}
