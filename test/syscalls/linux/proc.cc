// /proc files (proc(5)) that programs commonly read: self links, status,
// stat, maps, fd directory, cmdline, environ, meminfo, cpuinfo, mounts.
#include <sys/mman.h>

#include <algorithm>
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

}  // namespace
