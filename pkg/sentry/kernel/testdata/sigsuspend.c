/* A child signals its parent, which waits in sigsuspend; the handler runs,
 * sigsuspend fails with EINTR and the old mask (SIGUSR1 blocked) is back.
 * Then SIGCHLD is delivered on the child's exit and wait reaps it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1, got_chld;
static void on_usr1(int s) { (void)s; got_usr1++; }
static void on_chld(int s) { (void)s; got_chld++; }

int main(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_chld;
	sigaction(SIGCHLD, &sa, NULL);
	sigset_t block, old, empty, now;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &old);

	pid_t pid = fork();
	if (pid == 0) {
		kill(getppid(), SIGUSR1);
		_exit(9);
	}
	sigemptyset(&empty);
	while (!got_usr1) {
		int r = sigsuspend(&empty);
		if (r != -1 || errno != EINTR) return 1;
	}
	sigprocmask(SIG_SETMASK, NULL, &now);
	int blocked = sigismember(&now, SIGUSR1);
	while (!got_chld) sigsuspend(&empty);
	int status;
	if (waitpid(pid, &status, 0) != pid) return 2;
	char buf[128];
	int n = snprintf(buf, sizeof buf, "usr1=%d blocked_after=%d chld=%d code=%d\n",
	                 (int)got_usr1, blocked, (int)got_chld, WEXITSTATUS(status));
	write(1, buf, n);
	return 0;
}
