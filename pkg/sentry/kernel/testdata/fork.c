/* fork + wait, with copy-on-write: the child's write is not seen by the
 * parent, and the parent sees the child's exit status. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int shared_var = 1;

int main(void) {
	char buf[128];
	pid_t self = getpid();
	pid_t pid = fork();
	if (pid < 0) return 1;
	if (pid == 0) {
		shared_var = 99;
		int n = snprintf(buf, sizeof buf, "child ppid_ok=%d var=%d\n", getppid() == self, shared_var);
		write(1, buf, n);
		_exit(3);
	}
	int status = 0;
	if (waitpid(pid, &status, 0) != pid) return 2;
	int n = snprintf(buf, sizeof buf, "parent exited=%d code=%d var=%d\n",
	                 WIFEXITED(status), WEXITSTATUS(status), shared_var);
	write(1, buf, n);
	return 0;
}
