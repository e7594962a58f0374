// Shared helpers for the syscall conformance tests.
//
// Every test binary includes this header. It provides:
//   - assertion macros that check a syscall's return value and errno and
//     print the failing expression with strerror on failure;
//   - RAII owners for file descriptors, temporary directories and mappings,
//     so a failing assertion never leaks host state;
//   - raw syscall wrappers for calls glibc does not wrap (or wraps with
//     different semantics);
//   - RunInChild, which runs a lambda in a forked child and returns its wait
//     status, for tests that die, change credentials or namespaces, or
//     otherwise alter process-wide state.
//
// The runner precompiles this header and force-includes it ahead of each
// source (-include), so it must stay self-contained.
#ifndef CARAPACE_TEST_SYSCALLS_LINUX_TEST_UTIL_H_
#define CARAPACE_TEST_SYSCALLS_LINUX_TEST_UTIL_H_

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

// --- Assertions on syscall results ----------------------------------------

// ASSERT_OK(expr) evaluates expr (a syscall returning -1 on failure) and
// asserts it did not fail. The value is discarded; use ASSERT_OK(x = f())
// to keep it.
#define SYSCALL_CHECK_OK_(fatal, expr)                                  \
  do {                                                                  \
    errno = 0;                                                          \
    long long syscall_ret_ = (long long)(expr);                         \
    fatal##_NE(syscall_ret_, -1)                                        \
        << #expr << " failed: " << strerror(errno) << " (" << errno << ")"; \
  } while (0)
#define ASSERT_OK(expr) SYSCALL_CHECK_OK_(ASSERT, expr)
#define EXPECT_OK(expr) SYSCALL_CHECK_OK_(EXPECT, expr)

// ASSERT_ERRNO(err, expr) asserts expr returned -1 with errno == err.
#define SYSCALL_CHECK_ERRNO_(fatal, err, expr)                             \
  do {                                                                     \
    errno = 0;                                                             \
    long long syscall_ret_ = (long long)(expr);                            \
    int syscall_errno_ = errno;                                            \
    fatal##_EQ(syscall_ret_, -1) << #expr << " unexpectedly succeeded";    \
    fatal##_EQ(syscall_errno_, (err))                                      \
        << #expr << ": want " << strerror(err) << ", got "                 \
        << strerror(syscall_errno_);                                       \
  } while (0)
#define ASSERT_ERRNO(err, expr) SYSCALL_CHECK_ERRNO_(ASSERT, err, expr)
#define EXPECT_ERRNO(err, expr) SYSCALL_CHECK_ERRNO_(EXPECT, err, expr)

// EXPECT_RET(n, expr) expects expr to return exactly n (and reports errno if
// it returned -1 instead).
#define EXPECT_RET(n, expr)                                                \
  do {                                                                     \
    errno = 0;                                                             \
    long long syscall_ret_ = (long long)(expr);                            \
    EXPECT_EQ(syscall_ret_, (long long)(n))                                \
        << #expr << (syscall_ret_ == -1 ? std::string(": ") + strerror(errno) \
                                        : std::string());                  \
  } while (0)
#define ASSERT_RET(n, expr)                                                \
  do {                                                                     \
    errno = 0;                                                             \
    long long syscall_ret_ = (long long)(expr);                            \
    ASSERT_EQ(syscall_ret_, (long long)(n))                                \
        << #expr << (syscall_ret_ == -1 ? std::string(": ") + strerror(errno) \
                                        : std::string());                  \
  } while (0)

// Retries a syscall expression while it fails with EINTR.
#define RETRY_EINTR(expr)                                  \
  ({                                                       \
    long long retry_ret_;                                  \
    do {                                                   \
      retry_ret_ = (long long)(expr);                      \
    } while (retry_ret_ == -1 && errno == EINTR);          \
    retry_ret_;                                            \
  })

// An address that is never mapped in a user process on x86-64 (the
// non-canonical hole), used to provoke EFAULT.
static void* const kBadPtr = reinterpret_cast<void*>(0x8000000000000000ULL - 4096 * 16 + 0x10);
// A low address that is never mapped (mmap_min_addr keeps page 0 free).
static void* const kNullPagePtr = reinterpret_cast<void*>(16);

// --- RAII owners ----------------------------------------------------------

// Fd owns a file descriptor and closes it on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    reset(o.release());
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Removes a tree, ignoring errors; used by TempDir cleanup.
inline int RemoveTreeEntry(const char* path, const struct stat*, int type, struct FTW*) {
  if (type == FTW_DP || type == FTW_D || type == FTW_DNR) {
    rmdir(path);
  } else {
    unlink(path);
  }
  return 0;
}

inline std::string TestTmpRoot() {
  const char* t = getenv("TEST_TMPDIR");
  if (t != nullptr && *t != '\0') return t;
  return "/tmp";
}

// TempDir creates a fresh directory and removes it recursively when
// destroyed. Permission bits are restored first so a test that chmods a
// subdirectory to 0 does not leak it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = TestTmpRoot() + "/carapace-syscalls-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) {
      fprintf(stderr, "mkdtemp(%s): %s\n", tmpl.c_str(), strerror(errno));
      abort();
    }
    path_ = buf.data();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    nftw(path_.c_str(), ChmodEntry, 16, FTW_PHYS);
    nftw(path_.c_str(), RemoveTreeEntry, 16, FTW_DEPTH | FTW_PHYS);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  static int ChmodEntry(const char* p, const struct stat* st, int type, struct FTW*) {
    if (type == FTW_D || type == FTW_DNR) chmod(p, 0700);
    (void)st;
    return 0;
  }
  std::string path_;
};

// Mapping owns an mmap'd region.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* addr, size_t len) : addr_(addr), len_(len) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { reset(); }
  void reset() {
    if (addr_ != nullptr && addr_ != MAP_FAILED) munmap(addr_, len_);
    addr_ = nullptr;
  }
  void release() { addr_ = nullptr; }
  bool ok() const { return addr_ != nullptr && addr_ != MAP_FAILED; }
  char* ptr() const { return static_cast<char*>(addr_); }
  uintptr_t addr() const { return reinterpret_cast<uintptr_t>(addr_); }
  size_t len() const { return len_; }

 private:
  void* addr_ = nullptr;
  size_t len_ = 0;
};

inline Mapping MapAnon(size_t len, int prot = PROT_READ | PROT_WRITE, int flags = MAP_PRIVATE) {
  return Mapping(mmap(nullptr, len, prot, flags | MAP_ANONYMOUS, -1, 0), len);
}

inline size_t PageSize() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

// --- Small file helpers ---------------------------------------------------

// Writes content to path (created 0644, truncated). Returns false on error.
inline bool WriteFile(const std::string& path, const std::string& content) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n <= 0) {
      close(fd);
      return false;
    }
    done += n;
  }
  return close(fd) == 0;
}

// Reads the whole file at path; returns false on error.
inline bool ReadFile(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, n);
  }
  close(fd);
  return true;
}

// Reads exactly len bytes from fd (looping over short reads).
inline ssize_t ReadFull(int fd, void* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = read(fd, static_cast<char*>(buf) + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    done += n;
  }
  return done;
}

inline ssize_t WriteFull(int fd, const void* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, static_cast<const char*>(buf) + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    done += n;
  }
  return done;
}

// --- Time -----------------------------------------------------------------

inline int64_t NowNs(clockid_t clk = CLOCK_MONOTONIC) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

inline void SleepMs(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

// --- Raw syscall wrappers ---------------------------------------------------

inline pid_t Gettid() { return static_cast<pid_t>(syscall(SYS_gettid)); }
inline int Tgkill(pid_t tgid, pid_t tid, int sig) {
  return static_cast<int>(syscall(SYS_tgkill, tgid, tid, sig));
}
inline long Futex(void* uaddr, int op, int val, const struct timespec* ts = nullptr,
                  void* uaddr2 = nullptr, int val3 = 0) {
  return syscall(SYS_futex, uaddr, op, val, ts, uaddr2, val3);
}

// --- Child processes ------------------------------------------------------

// CHILD_CHECK is the assertion to use inside RunInChild: gtest assertions
// would be recorded in the child's copy of the test state and lost. On
// failure it prints the condition and exits with status 1 (or a line-coded
// status so the parent's message points to the failing line).
#define CHILD_CHECK(cond)                                                    \
  do {                                                                       \
    if (!(cond)) {                                                           \
      int child_errno_ = errno;                                              \
      fprintf(stderr, "%s:%d: child check failed: %s (errno %d: %s)\n",      \
              __FILE__, __LINE__, #cond, child_errno_, strerror(child_errno_)); \
      fflush(stderr);                                                        \
      _exit(100 + (__LINE__ % 100));                                         \
    }                                                                        \
  } while (0)

// RunInChild forks, runs fn in the child, and exits the child with fn's
// return value. It returns the child's wait status (or -1 if fork failed).
// The child never returns into gtest.
inline int RunInChild(const std::function<int()>& fn) {
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int rc = fn();
    _exit(rc);
  }
  int status = 0;
  if (RETRY_EINTR(waitpid(pid, &status, 0)) != pid) return -1;
  return status;
}

// Matches a wait status of a normal exit with code.
inline ::testing::AssertionResult ExitedWith(int status, int code) {
  if (WIFEXITED(status) && WEXITSTATUS(status) == code)
    return ::testing::AssertionSuccess();
  if (WIFEXITED(status))
    return ::testing::AssertionFailure() << "exited with " << WEXITSTATUS(status)
                                         << ", want " << code;
  if (WIFSIGNALED(status))
    return ::testing::AssertionFailure() << "killed by signal " << WTERMSIG(status)
                                         << ", want exit " << code;
  return ::testing::AssertionFailure() << "wait status " << status;
}

inline ::testing::AssertionResult KilledBy(int status, int sig) {
  if (WIFSIGNALED(status) && WTERMSIG(status) == sig) return ::testing::AssertionSuccess();
  if (WIFEXITED(status))
    return ::testing::AssertionFailure() << "exited with " << WEXITSTATUS(status)
                                         << ", want signal " << sig;
  if (WIFSIGNALED(status))
    return ::testing::AssertionFailure() << "killed by signal " << WTERMSIG(status)
                                         << ", want " << sig;
  return ::testing::AssertionFailure() << "wait status " << status;
}

// EXPECT_CHILD_OK runs the body in a child and expects exit status 0.
// The status is captured first so a failure message shows the child's
// status rather than the whole macro-expanded lambda; the child's own
// CHILD_CHECK message (file:line) is on stderr.
#define EXPECT_CHILD_OK(...)                                          \
  do {                                                                \
    int child_status_ = RunInChild(__VA_ARGS__);                      \
    EXPECT_TRUE(ExitedWith(child_status_, 0)) << "child process failed"; \
  } while (0)

#define SKIP_IF_NOT_ROOT()                               \
  do {                                                   \
    if (geteuid() != 0) GTEST_SKIP() << "needs root";    \
  } while (0)

// A no-op signal handler, installed without SA_RESTART so blocking calls
// return EINTR.
inline void NoopHandler(int) {}

inline int InstallHandler(int sig, void (*handler)(int), int flags = 0) {
  struct sigaction sa = {};
  sa.sa_handler = handler;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  return sigaction(sig, &sa, nullptr);
}

// Fills a vector with a deterministic byte pattern.
inline std::string Pattern(size_t n, unsigned seed = 1) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) s[i] = static_cast<char>((i * 31 + seed * 7) & 0xff);
  return s;
}

#endif  // CARAPACE_TEST_SYSCALLS_LINUX_TEST_UTIL_H_
