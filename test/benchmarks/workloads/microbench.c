// microbench runs one micro-benchmark for at least the requested time and
// prints its cost per operation as one JSON object on stdout:
//   {"name":"getpid","ops":1234567,"ns_per_op":812.3}
// The timing is done here, inside the workload, so that the runtime's start
// and exit costs are not part of the figure. Built statically so the same
// binary runs natively, in a runc bundle and in the sandbox.
//
// Usage: microbench NAME [MIN_SECONDS]   (default 1 second)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "microbench: %s: %s\n", what, strerror(errno));
  exit(2);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

// A benchmark runs n operations; setup/teardown happen outside the timing.
typedef struct {
  const char *name;
  void (*setup)(void);
  void (*run)(long n);
  void (*teardown)(void);
} bench;

static char buf[1 << 16];
static int fd_a = -1;
static char path[4096];

static void run_getpid(long n) {
  for (long i = 0; i < n; i++) syscall(SYS_getpid);
}

static void setup_devzero(void) {
  if ((fd_a = open("/dev/zero", O_RDONLY)) < 0) die("open /dev/zero");
}
static void run_read_devzero(long n) {
  for (long i = 0; i < n; i++)
    if (read(fd_a, buf, 4096) != 4096) die("read /dev/zero");
}
static void close_a(void) {
  close(fd_a);
  fd_a = -1;
}

// A file that exists in every rootfs the harness uses (the host's root).
static const char *existing = "/etc/passwd";
static void run_open_close(long n) {
  for (long i = 0; i < n; i++) {
    int fd = open(existing, O_RDONLY);
    if (fd < 0) die("open");
    close(fd);
  }
}
static void run_stat(long n) {
  struct stat st;
  for (long i = 0; i < n; i++)
    if (stat(existing, &st) != 0) die("stat");
}

static void setup_tmpfs_file(void) {
  // /dev/shm is a tmpfs natively, in runc's default spec and in the sandbox.
  snprintf(path, sizeof(path), "/dev/shm/microbench.%d", getpid());
  if ((fd_a = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) < 0) die("create tmpfs file");
}
static void run_tmpfs_write(long n) {
  for (long i = 0; i < n; i++)
    if (pwrite(fd_a, buf, 4096, 0) != 4096) die("pwrite");
}
static void teardown_tmpfs_file(void) {
  close_a();
  unlink(path);
}

// One operation is the first touch of one fresh page; each batch maps and
// touches 100 MiB, as the workload list asks.
static void run_touch_pages(long n) {
  const long span = 100L << 20, pages = span / 4096;
  while (n > 0) {
    long todo = n < pages ? n : pages;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    for (long i = 0; i < todo; i++) p[i * 4096] = 1;
    munmap(p, span);
    n -= todo;
  }
}

static void run_fork_exit_wait(long n) {
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) _exit(0);
    int status;
    if (waitpid(pid, &status, 0) != pid) die("waitpid");
  }
}

static void run_exec_true(long n) {
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      execl("/bin/true", "true", (char *)NULL);
      _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      die("exec /bin/true");
  }
}

// Pipe ping-pong: one operation is a one-byte round trip to a child.
static pid_t child = -1;
static int up[2], down[2];
static void setup_pipes(void) {
  if (pipe(up) || pipe(down)) die("pipe");
  if ((child = fork()) < 0) die("fork");
  if (child == 0) {
    // Drop the parent's ends, or the child never sees end of file.
    close(down[1]);
    close(up[0]);
    char c;
    while (read(down[0], &c, 1) == 1)
      if (write(up[1], &c, 1) != 1) _exit(1);
    _exit(0);
  }
  close(up[1]);
  close(down[0]);
}
static void run_pipe_pingpong(long n) {
  char c = 'x';
  for (long i = 0; i < n; i++) {
    if (write(down[1], &c, 1) != 1) die("write pipe");
    if (read(up[0], &c, 1) != 1) die("read pipe");
  }
}
static void teardown_pipes(void) {
  close(down[1]);
  close(up[0]);
  waitpid(child, NULL, 0);
}

static void run_clock_gettime(long n) {
  struct timespec ts;
  for (long i = 0; i < n; i++) clock_gettime(CLOCK_MONOTONIC, &ts);
}

// Loopback TCP: a child echoes (ping-pong) or drains (bulk).
static int listen_loopback(int *port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 1) ||
      getsockname(s, (struct sockaddr *)&a, &len))
    die("listen on loopback");
  *port = ntohs(a.sin_port);
  return s;
}
static int connect_loopback(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a))) die("connect loopback");
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return s;
}
static void start_tcp_peer(int echo) {
  int port, l = listen_loopback(&port);
  if ((child = fork()) < 0) die("fork");
  if (child == 0) {
    int c = accept(l, NULL, NULL);
    if (c < 0) _exit(1);
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ssize_t r;
    while ((r = read(c, buf, echo ? 1 : sizeof(buf))) > 0)
      if (echo && write(c, buf, r) != r) _exit(1);
    _exit(0);
  }
  close(l);
  fd_a = connect_loopback(port);
}
static void setup_tcp_echo(void) { start_tcp_peer(1); }
static void setup_tcp_sink(void) { start_tcp_peer(0); }
static void run_tcp_pingpong(long n) {
  char c = 'x';
  for (long i = 0; i < n; i++) {
    if (write(fd_a, &c, 1) != 1) die("tcp write");
    if (read(fd_a, &c, 1) != 1) die("tcp read");
  }
}
// One operation is a 64 KiB write; the harness converts to bytes/second.
static void run_tcp_bulk(long n) {
  for (long i = 0; i < n; i++) {
    size_t off = 0;
    while (off < sizeof(buf)) {
      ssize_t w = write(fd_a, buf + off, sizeof(buf) - off);
      if (w <= 0) die("tcp bulk write");
      off += w;
    }
  }
}
static void teardown_tcp(void) {
  close_a();
  waitpid(child, NULL, 0);
}

static const bench benches[] = {
    {"getpid", NULL, run_getpid, NULL},
    {"read_devzero_4k", setup_devzero, run_read_devzero, close_a},
    {"open_close", NULL, run_open_close, NULL},
    {"stat", NULL, run_stat, NULL},
    {"tmpfs_write_4k", setup_tmpfs_file, run_tmpfs_write, teardown_tmpfs_file},
    {"touch_fresh_page", NULL, run_touch_pages, NULL},
    {"fork_exit_wait", NULL, run_fork_exit_wait, NULL},
    {"exec_true", NULL, run_exec_true, NULL},
    {"pipe_pingpong", setup_pipes, run_pipe_pingpong, teardown_pipes},
    {"clock_gettime", NULL, run_clock_gettime, NULL},
    {"tcp_pingpong", setup_tcp_echo, run_tcp_pingpong, teardown_tcp},
    {"tcp_bulk_64k", setup_tcp_sink, run_tcp_bulk, teardown_tcp},
};

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: microbench NAME [MIN_SECONDS]\nbenchmarks:");
    for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++)
      fprintf(stderr, " %s", benches[i].name);
    fprintf(stderr, "\n");
    return 2;
  }
  double min_ns = (argc == 3 ? atof(argv[2]) : 1.0) * 1e9;
  if (!(min_ns > 0)) {
    fprintf(stderr, "microbench: MIN_SECONDS must be positive\n");
    return 2;
  }
  for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++) {
    const bench *b = &benches[i];
    if (strcmp(b->name, argv[1]) != 0) continue;
    if (b->setup) b->setup();
    // Grow the batch until one batch alone lasts at least min_ns, so the
    // clock reads are negligible and the figure covers >= min_ns of work.
    long n = 1;
    double elapsed;
    for (;;) {
      double start = now_ns();
      b->run(n);
      elapsed = now_ns() - start;
      if (elapsed >= min_ns) break;
      double scale = elapsed > 0 ? min_ns / elapsed * 1.2 : 100;
      if (scale > 100) scale = 100;
      if (scale < 2) scale = 2;
      n = (long)(n * scale);
    }
    if (b->teardown) b->teardown();
    printf("{\"name\":\"%s\",\"ops\":%ld,\"ns_per_op\":%.1f}\n", b->name, n, elapsed / n);
    return 0;
  }
  fprintf(stderr, "microbench: unknown benchmark %s\n", argv[1]);
  return 2;
}
