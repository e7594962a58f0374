/* personality(2): query, set, inheritance across fork and execve, and
 * ADDR_NO_RANDOMIZE fixing the layout of the next image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/wait.h>
#include <unistd.h>

/* layout runs "self child" and reads the line it prints. */
static void layout(const char *self, char *buf, size_t n) {
	int p[2];
	if (pipe(p) != 0) exit(10);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		execl(self, self, "child", (char *)0);
		_exit(11);
	}
	close(p[1]);
	ssize_t got = read(p[0], buf, n - 1);
	buf[got > 0 ? got : 0] = 0;
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
}

int main(int argc, char **argv) {
	if (argc > 1 && strcmp(argv[1], "child") == 0) {
		void *m = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		printf("%p %p %p %x\n", (void *)&argc, m, sbrk(0), personality(0xffffffff));
		return 0;
	}
	int q = personality(0xffffffff);
	int old = personality(PER_LINUX | ADDR_NO_RANDOMIZE | READ_IMPLIES_EXEC);
	int now = personality(0xffffffff);
	char a[128], b[128], c[128], d[128];
	layout(argv[0], a, sizeof a);
	layout(argv[0], b, sizeof b);
	personality(PER_LINUX);
	layout(argv[0], c, sizeof c);
	layout(argv[0], d, sizeof d);
	char *pa = strrchr(a, ' '), *pc = strrchr(c, ' ');
	printf("q=%x old=%x now=%x same=%d differ=%d child=%s", q, old, now,
	       strcmp(a, b) == 0, strcmp(c, d) != 0, pa ? pa + 1 : "?\n");
	printf("child after reset=%s", pc ? pc + 1 : "?\n");
	return 0;
}
