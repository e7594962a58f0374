/* vfork + execve of argv[1] with an argument and an environment variable;
 * the parent reports the child's status. With "child" as argv[1] it is
 * the exec'd program: it prints its argv and environment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv, char **envp) {
	char buf[256];
	if (argc > 1 && strcmp(argv[1], "child") == 0) {
		const char *v = getenv("CARAPACE");
		int n = snprintf(buf, sizeof buf, "exec'd argc=%d argv2=%s env=%s\n", argc, argc > 2 ? argv[2] : "-", v ? v : "-");
		write(1, buf, n);
		return 5;
	}
	pid_t pid = vfork();
	if (pid == 0) {
		char *args[] = {argv[0], "child", "two", NULL};
		char *env[] = {"CARAPACE=yes", NULL};
		execve(argv[0], args, env);
		_exit(127);
	}
	int status;
	if (waitpid(pid, &status, 0) != pid) return 1;
	int n = snprintf(buf, sizeof buf, "parent code=%d\n", WEXITSTATUS(status));
	write(1, buf, n);
	char *bad[] = {"x", NULL};
	if (execve("/nonexistent/binary", bad, bad) == -1) write(1, "enoent ok\n", 10);
	return 0;
}
