// /proc files (proc(5)) that programs commonly read: self links, status,
// stat, maps, fd directory, cmdline, environ, meminfo, cpuinfo, mounts.
#include <sys/mman.h>
#include <pthread.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "test_util.h"

namespace {

std::string Slurp(const std::string& path) {
  std::string s;
  ReadFile(path, &s);
  return s;
}

TEST(Proc, SelfLinkPointsToPid) {
  char buf[64] = {};
  ASSERT_OK(readlink("/proc/self", buf, sizeof(buf) - 1));
  EXPECT_EQ(std::string(buf), std::to_string(getpid()));
}

TEST(Proc, ThreadSelfLink) {
  char buf[64] = {};
  ASSERT_OK(readlink("/proc/thread-self", buf, sizeof(buf) - 1));
  EXPECT_EQ(std::string(buf), std::to_string(getpid()) + "/task/" + std::to_string(Gettid()));
}

TEST(Proc, ExeLinkIsThisBinary) {
  char buf[4096] = {};
  ASSERT_OK(readlink("/proc/self/exe", buf, sizeof(buf) - 1));
  struct stat a, b;
  ASSERT_OK(stat(buf, &a));
  ASSERT_OK(stat("/proc/self/exe", &b));
  EXPECT_EQ(a.st_ino, b.st_ino);
}

// A program that re-executes itself through /proc/self/exe (busybox does)
// runs, and its own /proc/self/exe then names the file, not the link: the
// child runs just the test above in the re-executed binary.
TEST(Proc, ExecThroughProcSelfExe) {
  EXPECT_CHILD_OK([] {
    int null = open("/dev/null", O_WRONLY);
    CHILD_CHECK(null >= 0);
    CHILD_CHECK(dup2(null, 1) == 1);
    char arg0[] = "proc";
    char arg1[] = "--gtest_filter=Proc.ExeLinkIsThisBinary";
    char* argv[] = {arg0, arg1, nullptr};
    char* envp[] = {nullptr};
    execve("/proc/self/exe", argv, envp);
    CHILD_CHECK(false);
    return 1;
  });
}

TEST(Proc, CwdLinkFollowsChdir) {
  TempDir d;
  std::string path = d.path();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(chdir(path.c_str()) == 0);
    char buf[4096] = {};
    CHILD_CHECK(readlink("/proc/self/cwd", buf, sizeof(buf) - 1) > 0);
    char real[4096];
    realpath(path.c_str(), real);
    CHILD_CHECK(strcmp(buf, real) == 0);
    return 0;
  });
}

TEST(Proc, StatusHasPidAndState) {
  std::string s = Slurp("/proc/self/status");
  EXPECT_NE(s.find("Pid:\t" + std::to_string(getpid()) + "\n"), std::string::npos);
  EXPECT_NE(s.find("PPid:\t" + std::to_string(getppid()) + "\n"), std::string::npos);
  EXPECT_NE(s.find("State:\tR (running)"), std::string::npos);
  EXPECT_NE(s.find("Uid:\t"), std::string::npos);
  EXPECT_NE(s.find("Threads:\t1\n"), std::string::npos);
}

TEST(Proc, StatFieldsParse) {
  std::string s = Slurp("/proc/self/stat");
  // pid (comm) state ppid ...
  size_t rp = s.rfind(')');
  ASSERT_NE(rp, std::string::npos);
  EXPECT_EQ(std::stoi(s), getpid());
  std::istringstream rest(s.substr(rp + 2));
  char state;
  int ppid;
  rest >> state >> ppid;
  EXPECT_EQ(state, 'R');
  EXPECT_EQ(ppid, getppid());
}

TEST(Proc, MapsShowsNewMapping) {
  size_t ps = PageSize();
  Mapping m = MapAnon(3 * ps, PROT_READ);
  ASSERT_TRUE(m.ok());
  char want[64];
  snprintf(want, sizeof(want), "%lx-%lx r--p", (unsigned long)m.addr(), (unsigned long)(m.addr() + 3 * ps));
  EXPECT_NE(Slurp("/proc/self/maps").find(want), std::string::npos) << want;
}

TEST(Proc, MapsShowsFileMappingPath) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("mapped"), std::string(4096, 'x')));
  Fd f(open(d.Sub("mapped").c_str(), O_RDONLY));
  Mapping m(mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, f.get(), 0), 4096);
  ASSERT_TRUE(m.ok());
  EXPECT_NE(Slurp("/proc/self/maps").find("/mapped\n"), std::string::npos);
}

TEST(Proc, FdDirectoryListsOpenFds) {
  Fd f(open("/dev/null", O_RDONLY));
  std::string link = "/proc/self/fd/" + std::to_string(f.get());
  char buf[64] = {};
  ASSERT_OK(readlink(link.c_str(), buf, sizeof(buf) - 1));
  EXPECT_STREQ(buf, "/dev/null");
  int n = f.get();
  f.reset();
  EXPECT_ERRNO(ENOENT, access(("/proc/self/fd/" + std::to_string(n)).c_str(), F_OK));
}

TEST(Proc, FdinfoShowsFlagsAndPos) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("f"), "0123456789"));
  Fd f(open(d.Sub("f").c_str(), O_RDONLY));
  ASSERT_OK(lseek(f.get(), 4, SEEK_SET));
  std::string info = Slurp("/proc/self/fdinfo/" + std::to_string(f.get()));
  EXPECT_NE(info.find("pos:\t4\n"), std::string::npos) << info;
  EXPECT_NE(info.find("flags:\t"), std::string::npos);
}

TEST(Proc, CmdlineIsNulSeparatedArgv) {
  std::string c = Slurp("/proc/self/cmdline");
  ASSERT_FALSE(c.empty());
  EXPECT_EQ(c.back(), '\0');
  std::string argv0 = c.substr(0, c.find('\0'));
  EXPECT_NE(argv0.find("proc"), std::string::npos) << argv0;
}

TEST(Proc, EnvironShowsInitialEnvironment) {
  // Run a child with a known environment and have it read its own
  // /proc/self/environ through the shell.
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    char* argv[] = {(char*)"cat", (char*)"/proc/self/environ", nullptr};
    char* envp[] = {(char*)"CARAPACE_MARKER=yes", (char*)"B=2", nullptr};
    execve("/bin/cat", argv, envp);
    _exit(127);
  }
  close(p[1]);
  char buf[256] = {};
  ssize_t n = ReadFull(p[0], buf, sizeof(buf));
  close(p[0]);
  int status;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(ExitedWith(status, 0));
  EXPECT_EQ(std::string(buf, n), std::string("CARAPACE_MARKER=yes\0B=2\0", 24));
}

TEST(Proc, MeminfoAndCpuinfo) {
  std::string m = Slurp("/proc/meminfo");
  EXPECT_NE(m.find("MemTotal:"), std::string::npos);
  EXPECT_NE(m.find("MemFree:"), std::string::npos);
  std::string c = Slurp("/proc/cpuinfo");
  EXPECT_NE(c.find("processor"), std::string::npos);
}

TEST(Proc, UptimeAndLoadavg) {
  double up = 0, idle = 0;
  std::istringstream(Slurp("/proc/uptime")) >> up >> idle;
  EXPECT_GT(up, 0);
  std::string la = Slurp("/proc/loadavg");
  EXPECT_EQ(std::count(la.begin(), la.end(), ' '), 4) << la;
}

TEST(Proc, MountsHasRoot) {
  std::string m = Slurp("/proc/self/mounts");
  EXPECT_NE(m.find(" / "), std::string::npos);
  EXPECT_NE(Slurp("/proc/self/mountinfo").find(" / "), std::string::npos);
}

TEST(Proc, TaskDirectoryListsThreads) {
  std::string dir = "/proc/self/task/" + std::to_string(Gettid());
  struct stat st;
  EXPECT_OK(stat(dir.c_str(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST(Proc, OtherProcessVisibleAndGoneAfterReap) {
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    read(p[0], &c, 1);
    _exit(0);
  }
  std::string dir = "/proc/" + std::to_string(pid);
  EXPECT_OK(access(dir.c_str(), F_OK));
  std::string s = Slurp(dir + "/status");
  EXPECT_NE(s.find("PPid:\t" + std::to_string(getpid())), std::string::npos);
  write(p[1], "x", 1);
  waitpid(pid, nullptr, 0);
  EXPECT_ERRNO(ENOENT, access(dir.c_str(), F_OK));
  close(p[0]);
  close(p[1]);
}

TEST(Proc, ReadOnlyFilesRejectWriteOpenForNonRoot) {
  // status is mode 0444; root bypasses permission bits, so drop to an
  // ordinary uid first.
  EXPECT_CHILD_OK([] {
    if (geteuid() == 0) CHILD_CHECK(setresuid(1000, 1000, 1000) == 0);
    CHILD_CHECK(open("/proc/self/status", O_WRONLY) == -1 && errno == EACCES);
    return 0;
  });
}

TEST(Proc, SysKernelValues) {
  std::string pid_max = Slurp("/proc/sys/kernel/pid_max");
  EXPECT_GT(std::stol(pid_max), 0);
  std::string ostype = Slurp("/proc/sys/kernel/ostype");
  EXPECT_EQ(ostype, "Linux\n");
}

TEST(Proc, CommWritable) {
  EXPECT_CHILD_OK([] {
    int fd = open("/proc/self/comm", O_WRONLY);
    CHILD_CHECK(fd >= 0);
    CHILD_CHECK(write(fd, "renamed", 7) == 7);
    close(fd);
    std::string c;
    ReadFile("/proc/self/comm", &c);
    CHILD_CHECK(c == "renamed\n");
    return 0;
  });
}

TEST(Proc, StatusShowsBlockedAndCaughtSignals) {
  EXPECT_CHILD_OK([] {
    // Start from a known state: the test may inherit ignored or blocked
    // signals from whatever started it (make, a shell, nohup).
    for (int sig = 1; sig < 32; sig++) {
      if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHILD_CHECK(sigprocmask(SIG_SETMASK, &set, nullptr) == 0);
    CHILD_CHECK(InstallHandler(SIGUSR2, NoopHandler) == 0);
    CHILD_CHECK(signal(SIGHUP, SIG_IGN) != SIG_ERR);
    std::string s;
    ReadFile("/proc/self/status", &s);
    // Signal n is bit n-1 of the hex masks. Only the bits this test set
    // are checked: what else the starting process ignores or catches
    // (real-time signals included) is not this test's to fix.
    auto mask = [&s](const char* field) -> unsigned long long {
      size_t at = s.find(std::string(field) + ":\t");
      if (at == std::string::npos) return ~0ULL;
      return strtoull(s.c_str() + at + strlen(field) + 2, nullptr, 16);
    };
    CHILD_CHECK(mask("SigBlk") == 0x200);
    CHILD_CHECK((mask("SigCgt") & 0x1ffULL) == 0 && (mask("SigCgt") & 0x800) != 0);
    CHILD_CHECK((mask("SigIgn") & 0xfffULL) == 0x1);
    return 0;
  });
}

TEST(Proc, FdReopenHasItsOwnOffset) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("f"), "0123456789"));
  Fd f(open(d.Sub("f").c_str(), O_RDONLY));
  ASSERT_OK(lseek(f.get(), 6, SEEK_SET));
  Fd again(open(("/proc/self/fd/" + std::to_string(f.get())).c_str(), O_RDONLY));
  ASSERT_TRUE(again.valid());
  char buf[4] = {};
  ASSERT_EQ(read(again.get(), buf, 3), 3);
  EXPECT_EQ(std::string(buf, 3), "012");
  EXPECT_EQ(lseek(f.get(), 0, SEEK_CUR), 6);
}

TEST(Proc, SmallReadsSeeOneSnapshot) {
  // Reading a byte at a time must give the same text as one large read
  // of the same, unchanged process state.
  Fd f(open("/proc/self/limits", O_RDONLY));
  ASSERT_TRUE(f.valid());
  std::string small;
  char c;
  while (read(f.get(), &c, 1) == 1) small += c;
  EXPECT_EQ(small, Slurp("/proc/self/limits"));
  EXPECT_NE(small.find("Max open files"), std::string::npos);
}

TEST(Proc, OomScoreAdjIsStoredAndInherited) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(WriteFile("/proc/self/oom_score_adj", "500"));
    std::string v;
    ReadFile("/proc/self/oom_score_adj", &v);
    CHILD_CHECK(v == "500\n");
    pid_t pid = fork();
    if (pid == 0) {
      std::string c;
      ReadFile("/proc/self/oom_score_adj", &c);
      _exit(c == "500\n" ? 0 : 1);
    }
    int status;
    CHILD_CHECK(waitpid(pid, &status, 0) == pid);
    CHILD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return 0;
  });
}

TEST(Sysfs, CpuOnlineMatchesSysconf) {
  std::string online = Slurp("/sys/devices/system/cpu/online");
  ASSERT_FALSE(online.empty());
  // "0" or "0-N" (the sandbox's CPUs are contiguous from 0).
  long last = 0;
  size_t dash = online.find('-');
  if (dash != std::string::npos) last = std::stol(online.substr(dash + 1));
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (online.find(',') == std::string::npos) EXPECT_EQ(last + 1, n) << online;
  struct stat st;
  EXPECT_OK(stat("/sys/devices/system/cpu/cpu0", &st));
}

TEST(Proc, CpuinfoListsEachOnlineCpu) {
  std::string c = Slurp("/proc/cpuinfo");
  long n = 0;
  for (size_t p = 0; (p = c.find("processor\t:", p)) != std::string::npos; p++) n++;
  EXPECT_EQ(n, sysconf(_SC_NPROCESSORS_ONLN));
}

// One reading of /proc/self/io, made with a single read(2) so that the
// reading's own cost is known: one syscr and `len` bytes of rchar.
struct IoSnapshot {
  unsigned long long rchar = 0, wchar = 0, syscr = 0, syscw = 0;
  long len = 0;
};

IoSnapshot ReadIo() {
  IoSnapshot s;
  int fd = open("/proc/self/io", O_RDONLY);
  if (fd < 0) return s;
  char buf[512] = {};
  s.len = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  sscanf(buf, "rchar: %llu\nwchar: %llu\nsyscr: %llu\nsyscw: %llu", &s.rchar, &s.wchar, &s.syscr,
         &s.syscw);
  return s;
}

// Checks that between before and after (two ReadIo calls) the process
// read rbytes in rcalls calls and wrote wbytes in wcalls, besides the
// reading of /proc/self/io itself.
::testing::AssertionResult IoMoved(const IoSnapshot& before, const IoSnapshot& after,
                                   unsigned long long rbytes, unsigned long long rcalls,
                                   unsigned long long wbytes, unsigned long long wcalls) {
  unsigned long long want_rchar = before.rchar + before.len + rbytes;
  unsigned long long want_syscr = before.syscr + 1 + rcalls;
  if (after.rchar == want_rchar && after.syscr == want_syscr &&
      after.wchar == before.wchar + wbytes && after.syscw == before.syscw + wcalls)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "rchar " << before.rchar << "->" << after.rchar << " (want " << want_rchar
         << "), syscr " << before.syscr << "->" << after.syscr << " (want " << want_syscr
         << "), wchar " << before.wchar << "->" << after.wchar << " (want +" << wbytes
         << "), syscw " << before.syscw << "->" << after.syscw << " (want +" << wcalls << ")";
}

void* WriteToDevNull(void* arg) {
  int fd = *static_cast<int*>(arg);
  char buf[1000] = {};
  for (int i = 0; i < 10; i++) write(fd, buf, sizeof(buf));
  return nullptr;
}

// proc(5): /proc/[pid]/io is the whole process's: threads that have
// exited still count, and children count once they are waited for.
TEST(Proc, IoIncludesDeadThreadsAndReapedChildren) {
  Fd null(open("/dev/null", O_WRONLY));
  ASSERT_TRUE(null.valid());
  int fd = null.get();
  IoSnapshot s0 = ReadIo();
  ASSERT_GT(s0.len, 0);
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, nullptr, WriteToDevNull, &fd), 0);
  ASSERT_EQ(pthread_join(th, nullptr), 0);
  IoSnapshot s1 = ReadIo();
  EXPECT_TRUE(IoMoved(s0, s1, 0, 0, 10000, 10)) << "after a thread wrote and exited";

  int p[2];
  ASSERT_OK(pipe(p));
  pid_t pid = fork();
  if (pid == 0) {
    WriteToDevNull(&fd);
    close(p[1]);
    char c;
    read(p[0], &c, 1);  // wait to be told to exit
    _exit(0);
  }
  ASSERT_OK(pid);
  close(p[0]);
  IoSnapshot s2 = ReadIo();
  EXPECT_TRUE(IoMoved(s1, s2, 0, 0, 0, 0)) << "a running child's I/O is its own";
  close(p[1]);
  int status;
  ASSERT_EQ(RETRY_EINTR(waitpid(pid, &status, 0)), pid);
  IoSnapshot s3 = ReadIo();
  // The child wrote 10000 bytes in 10 calls and made one read (0 bytes,
  // at EOF) before exiting.
  EXPECT_TRUE(IoMoved(s2, s3, 0, 1, 10000, 10)) << "after the child was reaped";
}

// ReadIoOf is ReadIo of another io file (a thread's).
IoSnapshot ReadIoOf(const std::string& path) {
  IoSnapshot s;
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return s;
  char buf[512] = {};
  s.len = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  sscanf(buf, "rchar: %llu\nwchar: %llu\nsyscr: %llu\nsyscw: %llu", &s.rchar, &s.wchar, &s.syscr,
         &s.syscw);
  return s;
}

std::string TaskIoPath(pid_t tid) {
  return "/proc/self/task/" + std::to_string(tid) + "/io";
}

struct ThreadIo {
  int null_fd;
  IoSnapshot before, after;
  std::atomic<pid_t> tid{0};
  std::atomic<bool> wrote{false}, may_exit{false};
};

void* WriteAndReadOwnTaskIo(void* arg) {
  auto* io = static_cast<ThreadIo*>(arg);
  io->tid = Gettid();
  io->before = ReadIoOf(TaskIoPath(Gettid()));
  char buf[1000] = {};
  for (int i = 0; i < 10; i++) write(io->null_fd, buf, sizeof(buf));
  io->after = ReadIoOf(TaskIoPath(Gettid()));
  io->wrote = true;
  while (!io->may_exit.load()) usleep(1000);
  return nullptr;
}

// proc(5): /proc/[pid]/task/[tid]/io is that thread's own I/O, while
// /proc/[pid]/io adds up the whole process.
TEST(Proc, TaskIoIsTheThreadsOwn) {
  Fd null(open("/dev/null", O_WRONLY));
  ASSERT_TRUE(null.valid());
  ThreadIo io;
  io.null_fd = null.get();
  IoSnapshot main0 = ReadIoOf(TaskIoPath(Gettid()));
  ASSERT_GT(main0.len, 0);
  IoSnapshot proc0 = ReadIo();
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, nullptr, WriteAndReadOwnTaskIo, &io), 0);
  while (!io.wrote.load()) usleep(1000);
  // The thread saw its own writes (and its own reading of the file).
  EXPECT_TRUE(IoMoved(io.before, io.after, 0, 0, 10000, 10)) << "thread's own io";
  // Another thread's io file, read from here, shows the same.
  IoSnapshot other = ReadIoOf(TaskIoPath(io.tid.load()));
  EXPECT_EQ(other.wchar, io.after.wchar);
  EXPECT_EQ(other.syscw, io.after.syscw);
  // This thread's file shows none of them: only its own reads of io files.
  IoSnapshot main1 = ReadIoOf(TaskIoPath(Gettid()));
  EXPECT_TRUE(IoMoved(main0, main1, proc0.len + other.len, 2, 0, 0)) << "main thread's own io";
  io.may_exit = true;
  ASSERT_EQ(pthread_join(th, nullptr), 0);
  // The process total has them, before and after the thread's exit.
  IoSnapshot proc1 = ReadIo();
  EXPECT_GE(proc1.wchar, proc0.wchar + 10000);
  EXPECT_GE(proc1.syscw, proc0.syscw + 10);
}

// On Linux only the read/write family counts in rchar/wchar, sockets
// included; send(2)/recv(2) and their to/from/msg forms do not.
TEST(Proc, IoCountsSocketReadWriteButNotSendRecv) {
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  Fd a(sv[0]), b(sv[1]);
  char buf[64] = {};
  IoSnapshot s0 = ReadIo();
  ASSERT_RET(10, send(a.get(), buf, 10, 0));
  ASSERT_RET(10, recv(b.get(), buf, 10, 0));
  ASSERT_RET(20, sendto(a.get(), buf, 20, 0, nullptr, 0));
  ASSERT_RET(20, recvfrom(b.get(), buf, 20, 0, nullptr, nullptr));
  struct iovec iov = {buf, 30};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ASSERT_RET(30, sendmsg(a.get(), &msg, 0));
  ASSERT_RET(30, recvmsg(b.get(), &msg, 0));
  IoSnapshot s1 = ReadIo();
  EXPECT_TRUE(IoMoved(s0, s1, 0, 0, 0, 0)) << "send/recv family";
  ASSERT_RET(40, write(a.get(), buf, 40));
  ASSERT_RET(40, read(b.get(), buf, 40));
  IoSnapshot s2 = ReadIo();
  EXPECT_TRUE(IoMoved(s1, s2, 40, 1, 40, 1)) << "read/write on a socket";
}

TEST(Proc, NetIsTheCallersOwnNetDirectory) {
  char buf[64] = {};
  ASSERT_OK(readlink("/proc/net", buf, sizeof(buf) - 1));
  EXPECT_EQ(std::string(buf), "self/net");
  for (const std::string& dir : {std::string("/proc/self/net"),
                                 "/proc/" + std::to_string(getpid()) + "/net",
                                 "/proc/self/task/" + std::to_string(Gettid()) + "/net"}) {
    struct stat st;
    ASSERT_OK(stat(dir.c_str(), &st));
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << dir;
    std::string unix_table = Slurp(dir + "/unix");
    EXPECT_EQ(unix_table.rfind("Num ", 0), 0u) << dir << "/unix: " << unix_table;
    std::string tcp = Slurp(dir + "/tcp");
    EXPECT_NE(tcp.find("local_address"), std::string::npos) << dir << "/tcp: " << tcp;
  }
}

}  // namespace

TEST(Proc, PersonalityShowsTheCallersPersona) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(personality(ADDR_NO_RANDOMIZE) != -1);
    std::string s;
    ReadFile("/proc/self/personality", &s);
    CHILD_CHECK(s == "00040000\n");
    return 0;
  });
}
