// PID namespaces (pid_namespaces(7)): clone(CLONE_NEWPID),
// unshare(CLONE_NEWPID), the namespace's init, IDs as seen from inside and
// outside, and a proc mounted inside. Every test works in a forked child
// (the namespaces it makes die with it), and needs root (CAP_SYS_ADMIN).
#include <pthread.h>
#include <sched.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <set>

#include "test_util.h"

namespace {

// Stack for clone(2) children (they run on their own copy of it).
constexpr size_t kStackSize = 256 * 1024;

// CloneNewPID runs fn in a child in a new PID namespace and returns its
// PID as the caller sees it.
pid_t CloneNewPID(const std::function<int()>& fn, int extra_flags = 0) {
  static std::function<int()> body;
  body = fn;
  static char* stack = static_cast<char*>(malloc(kStackSize));
  fflush(nullptr);
  return clone([](void*) -> int { return body(); }, stack + kStackSize,
               CLONE_NEWPID | SIGCHLD | extra_flags, nullptr);
}

// WaitFor reaps pid and returns its status (-1 on error).
int WaitFor(pid_t pid) {
  int status = 0;
  if (RETRY_EINTR(waitpid(pid, &status, 0)) != pid) return -1;
  return status;
}

// StatusField returns the value of a "Name:\t..." line of
// /proc/self/status ("" if absent).
std::string StatusField(const std::string& name, const std::string& proc = "/proc") {
  std::string s;
  if (!ReadFile(proc + "/self/status", &s)) return "";
  size_t at = s.find("\n" + name + ":\t");
  if (at == std::string::npos) return "";
  at += name.size() + 3;
  return s.substr(at, s.find('\n', at) - at);
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('\t', start);
    if (end == std::string::npos) end = s.size();
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string Readlink(const std::string& path) {
  char buf[256];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf));
  return n < 0 ? "" : std::string(buf, n);
}

TEST(PidNamespace, CloneChildIsInitOfNewNamespace) {
  SKIP_IF_NOT_ROOT();
  int p[2];
  ASSERT_OK(pipe(p));
  std::string outer = StatusField("NSpid");
  pid_t pid = CloneNewPID([&] {
    CHILD_CHECK(getpid() == 1);
    CHILD_CHECK(syscall(SYS_gettid) == 1);
    CHILD_CHECK(getppid() == 0);  // the parent is outside
    // The process group and session were inherited from outside.
    CHILD_CHECK(getpgrp() == 0);
    CHILD_CHECK(getsid(0) == 0);
    // Its own proc (the host's) still lists every level.
    std::vector<std::string> ns = Split(StatusField("NSpid"));
    CHILD_CHECK(ns.size() == Split(outer).size() + 1);
    CHILD_CHECK(ns.back() == "1");
    pid_t seen = atoi(ns[ns.size() - 2].c_str());
    CHILD_CHECK(write(p[1], &seen, sizeof(seen)) == sizeof(seen));
    return 0;
  });
  ASSERT_OK(pid);
  pid_t seen = 0;
  ASSERT_RET(sizeof(seen), read(p[0], &seen, sizeof(seen)));
  EXPECT_EQ(seen, pid);
  EXPECT_TRUE(ExitedWith(WaitFor(pid), 0));
  close(p[0]);
  close(p[1]);
}

TEST(PidNamespace, ChildrenNumberedInsideAndWaitable) {
  SKIP_IF_NOT_ROOT();
  pid_t pid = CloneNewPID([] {
    pid_t c = fork();
    if (c == 0) {
      if (getpid() != 2 || getppid() != 1) _exit(1);
      _exit(7);
    }
    CHILD_CHECK(c == 2);
    siginfo_t si = {};
    CHILD_CHECK(waitid(P_PID, 2, &si, WEXITED) == 0);
    CHILD_CHECK(si.si_pid == 2 && si.si_status == 7);
    // kill and getpgid take numbers of the namespace.
    CHILD_CHECK(kill(2, 0) == -1 && errno == ESRCH);
    CHILD_CHECK(getpgid(1) == 0);
    return 0;
  });
  ASSERT_OK(pid);
  EXPECT_TRUE(ExitedWith(WaitFor(pid), 0));
}

TEST(PidNamespace, UnshareAffectsOnlyLaterChildren) {
  SKIP_IF_NOT_ROOT();
  EXPECT_CHILD_OK([] {
    pid_t me = getpid();
    std::string before = Readlink("/proc/self/ns/pid");
    CHILD_CHECK(unshare(CLONE_NEWPID) == 0);
    CHILD_CHECK(getpid() == me);
    CHILD_CHECK(Readlink("/proc/self/ns/pid") == before);
    // The namespace for children shows only once it has its init.
    CHILD_CHECK(Readlink("/proc/self/ns/pid_for_children") == "" && errno == ENOENT);
    // A second namespace for children cannot be made before using it,
    // and no thread may be created in another namespace than ours.
    CHILD_CHECK(unshare(CLONE_NEWPID) == -1 && errno == EINVAL);
    pthread_t th;
    CHILD_CHECK(pthread_create(&th, nullptr, [](void*) -> void* { return nullptr; }, nullptr) == EINVAL);

    int p[2];
    CHILD_CHECK(pipe(p) == 0);
    pid_t init = fork();
    if (init == 0) {
      char c;
      close(p[1]);
      read(p[0], &c, 1);  // lives until the second child is done
      _exit(getpid() == 1 && getppid() == 0 ? 0 : 1);
    }
    CHILD_CHECK(init > 0);
    std::string children = Readlink("/proc/self/ns/pid_for_children");
    CHILD_CHECK(children.rfind("pid:[", 0) == 0 && children != before);
    pid_t second = fork();
    if (second == 0) _exit(getpid() == 2 ? 0 : 1);
    CHILD_CHECK(second > 0);
    // (Init's exit would kill the second child: let it finish first.)
    int st;
    CHILD_CHECK(waitpid(second, &st, 0) == second && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHILD_CHECK(write(p[1], "x", 1) == 1);
    CHILD_CHECK(waitpid(init, &st, 0) == init && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    // With its init gone, the namespace takes no more processes.
    CHILD_CHECK(fork() == -1 && errno == ENOMEM);
    return 0;
  });
}

TEST(PidNamespace, CloneFlagsCombinations) {
  SKIP_IF_NOT_ROOT();
  // A thread cannot go into a new namespace.
  char* stack = static_cast<char*>(malloc(kStackSize));
  errno = 0;
  EXPECT_EQ(clone([](void*) { return 0; }, stack + kStackSize,
                  CLONE_NEWPID | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM, nullptr),
            -1);
  EXPECT_EQ(errno, EINVAL);
  free(stack);
  // Init may not make siblings with CLONE_PARENT.
  pid_t pid = CloneNewPID([] {
    long r = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
    if (r == 0) _exit(0);
    CHILD_CHECK(r == -1 && errno == EINVAL);
    return 0;
  });
  ASSERT_OK(pid);
  EXPECT_TRUE(ExitedWith(WaitFor(pid), 0));
}

TEST(PidNamespace, OrphansGoToNamespaceInit) {
  SKIP_IF_NOT_ROOT();
  pid_t pid = CloneNewPID([] {
    int p[2];
    CHILD_CHECK(pipe(p) == 0);
    pid_t mid = fork();
    if (mid == 0) {
      if (fork() == 0) {
        while (getppid() != 1) SleepMs(2);
        pid_t me = getpid();
        write(p[1], &me, sizeof(me));
        _exit(0);
      }
      _exit(0);
    }
    CHILD_CHECK(waitpid(mid, nullptr, 0) == mid);
    pid_t grandchild = 0;
    CHILD_CHECK(read(p[0], &grandchild, sizeof(grandchild)) == sizeof(grandchild));
    // Adopted by us, so ours to reap.
    CHILD_CHECK(waitpid(grandchild, nullptr, 0) == grandchild);
    return 0;
  });
  ASSERT_OK(pid);
  EXPECT_TRUE(ExitedWith(WaitFor(pid), 0));
}

TEST(PidNamespace, InitDeathKillsTheNamespace) {
  SKIP_IF_NOT_ROOT();
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t pid = CloneNewPID([&] {
    close(p[0]);
    for (int i = 0; i < 3; i++) {
      if (fork() == 0) {
        // Holds the pipe's write end until killed.
        signal(SIGTERM, SIG_IGN);
        for (;;) pause();
      }
    }
    return 3;
  });
  ASSERT_OK(pid);
  close(p[1]);
  EXPECT_TRUE(ExitedWith(WaitFor(pid), 3));
  // Init is reported only once the others are gone: their write ends are
  // all closed.
  struct pollfd pfd = {p[0], POLLIN, 0};
  char c;
  EXPECT_RET(1, poll(&pfd, 1, 0));
  EXPECT_RET(0, read(p[0], &c, 1));
  close(p[0]);
}

TEST(PidNamespace, InitIgnoresDefaultSignalsFromInside) {
  SKIP_IF_NOT_ROOT();
  int ready[2];
  ASSERT_OK(pipe(ready));
  pid_t pid = CloneNewPID([&] {
    // Default dispositions: SIGTERM, SIGKILL and SIGSTOP from inside do
    // nothing to init, not even from init itself.
    CHILD_CHECK(kill(1, SIGTERM) == 0);
    CHILD_CHECK(raise(SIGUSR2) == 0);
    CHILD_CHECK(kill(1, SIGKILL) == 0);
    pid_t c = fork();
    if (c == 0) {
      kill(1, SIGKILL);
      kill(1, SIGSTOP);
      kill(1, SIGINT);
      _exit(0);
    }
    CHILD_CHECK(waitpid(c, nullptr, 0) == c);
    // A handled signal is delivered.
    static volatile sig_atomic_t got = 0;
    CHILD_CHECK(InstallHandler(SIGUSR1, [](int) { got = 1; }) == 0);
    CHILD_CHECK(kill(1, SIGUSR1) == 0);
    CHILD_CHECK(got == 1);
    CHILD_CHECK(write(ready[1], "r", 1) == 1);
    for (;;) pause();
    return 0;
  });
  ASSERT_OK(pid);
  char c;
  ASSERT_RET(1, read(ready[0], &c, 1));
  // From outside, a default-action signal other than SIGKILL and SIGSTOP
  // is not delivered either; SIGKILL is.
  ASSERT_OK(kill(pid, SIGTERM));
  SleepMs(50);
  int st;
  EXPECT_RET(0, waitpid(pid, &st, WNOHANG));
  ASSERT_OK(kill(pid, SIGKILL));
  EXPECT_TRUE(KilledBy(WaitFor(pid), SIGKILL));
  close(ready[0]);
  close(ready[1]);
}

TEST(PidNamespace, SiginfoPidIsTheReceiversView) {
  SKIP_IF_NOT_ROOT();
  int ready[2], res[2];
  ASSERT_OK(pipe(ready));
  ASSERT_OK(pipe(res));
  pid_t pid = CloneNewPID([&] {
    static volatile pid_t from = -1;
    struct sigaction sa = {};
    sa.sa_sigaction = [](int, siginfo_t* si, void*) { from = si->si_pid; };
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    CHILD_CHECK(sigaction(SIGUSR1, &sa, nullptr) == 0);
    // From a process of the namespace: its number here.
    pid_t c = fork();
    if (c == 0) {
      kill(1, SIGUSR1);
      _exit(0);
    }
    CHILD_CHECK(RETRY_EINTR(waitpid(c, nullptr, 0)) == c);
    CHILD_CHECK(from == c);
    from = -1;
    CHILD_CHECK(write(ready[1], "r", 1) == 1);
    // From the parent outside: 0.
    while (from == -1) pause();
    pid_t got = from;
    CHILD_CHECK(write(res[1], &got, sizeof(got)) == sizeof(got));
    return 0;
  });
  ASSERT_OK(pid);
  char c;
  ASSERT_RET(1, read(ready[0], &c, 1));
  ASSERT_OK(kill(pid, SIGUSR1));
  pid_t got = -1;
  ASSERT_RET(sizeof(got), read(res[0], &got, sizeof(got)));
  EXPECT_EQ(got, 0);
  // The parent's SIGCHLD names the child by its number out here.
  siginfo_t si = {};
  ASSERT_OK(waitid(P_PID, pid, &si, WEXITED));
  EXPECT_EQ(si.si_pid, pid);
  for (int fd : {ready[0], ready[1], res[0], res[1]}) close(fd);
}

TEST(PidNamespace, KillAllStaysInsideNamespace) {
  SKIP_IF_NOT_ROOT();
  pid_t pid = CloneNewPID([] {
    pid_t a = fork();
    if (a == 0) {
      for (;;) pause();
    }
    pid_t b = fork();
    if (b == 0) {
      for (;;) pause();
    }
    // kill(-1) reaches every process of the namespace but init.
    CHILD_CHECK(kill(-1, SIGKILL) == 0);
    int st;
    CHILD_CHECK(waitpid(a, &st, 0) == a && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    CHILD_CHECK(waitpid(b, &st, 0) == b && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    // Only init is left now.
    CHILD_CHECK(kill(-1, SIGKILL) == -1 && errno == ESRCH);
    return 0;
  });
  ASSERT_OK(pid);
  EXPECT_TRUE(ExitedWith(WaitFor(pid), 0));
}

TEST(PidNamespace, ProcMountedInsideShowsTheNamespace) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  std::string mp = d.path();
  pid_t pid = CloneNewPID(
      [&] {
        CHILD_CHECK(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
        CHILD_CHECK(mount("proc", mp.c_str(), "proc", 0, nullptr) == 0);
        int p[2];
        CHILD_CHECK(pipe(p) == 0);
        pid_t c = fork();
        if (c == 0) {
          char ch;
          read(p[0], &ch, 1);
          _exit(0);
        }
        CHILD_CHECK(Readlink(mp + "/self") == "1");
        std::set<std::string> pids;
        DIR* dir = opendir(mp.c_str());
        CHILD_CHECK(dir != nullptr);
        while (struct dirent* e = readdir(dir)) {
          if (e->d_name[0] >= '0' && e->d_name[0] <= '9') pids.insert(e->d_name);
        }
        closedir(dir);
        CHILD_CHECK((pids == std::set<std::string>{"1", std::to_string(c)}));
        // Numbers in the files are this namespace's, from here down.
        CHILD_CHECK(StatusField("NSpid", mp) == "1");
        CHILD_CHECK(StatusField("PPid", mp) == "0");
        std::string st;
        CHILD_CHECK(ReadFile(mp + "/" + std::to_string(c) + "/stat", &st));
        CHILD_CHECK(st.rfind(std::to_string(c) + " (", 0) == 0);
        CHILD_CHECK(st.find(") S 1 ") != std::string::npos || st.find(") R 1 ") != std::string::npos);
        write(p[1], "x", 1);
        waitpid(c, nullptr, 0);
        CHILD_CHECK(umount2(mp.c_str(), 0) == 0);
        return 0;
      },
      CLONE_NEWNS);
  ASSERT_OK(pid);
  EXPECT_TRUE(ExitedWith(WaitFor(pid), 0));
}

// ReceivedPid receives one byte on fd and returns the sender PID of its
// SCM_CREDENTIALS (-1 if none came).
pid_t ReceivedPid(int fd) {
  char data;
  struct iovec iov = {&data, 1};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(struct ucred))];
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (recvmsg(fd, &msg, 0) != 1) return -1;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
      struct ucred u;
      memcpy(&u, CMSG_DATA(c), sizeof(u));
      return u.pid;
    }
  }
  return -1;
}

TEST(PidNamespace, SocketCredentialsAreTranslatedForTheReceiver) {
  SKIP_IF_NOT_ROOT();
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  int on = 1;
  ASSERT_OK(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)));
  ASSERT_OK(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)));
  pid_t pid = CloneNewPID([&] {
    // The pair's creator (our parent) is outside: PID 0 from here.
    struct ucred peer = {};
    socklen_t len = sizeof(peer);
    CHILD_CHECK(getsockopt(sv[1], SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0);
    CHILD_CHECK(peer.pid == 0);
    CHILD_CHECK(write(sv[1], "c", 1) == 1);
    CHILD_CHECK(ReceivedPid(sv[1]) == 0);
    return 0;
  });
  ASSERT_OK(pid);
  EXPECT_EQ(ReceivedPid(sv[0]), pid);  // the child as we number it
  ASSERT_RET(1, write(sv[0], "p", 1));
  EXPECT_TRUE(ExitedWith(WaitFor(pid), 0));
  struct ucred peer = {};
  socklen_t len = sizeof(peer);
  ASSERT_OK(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &peer, &len));
  EXPECT_EQ(peer.pid, getpid());
  close(sv[0]);
  close(sv[1]);
}

TEST(PidNamespace, SetnsMovesLaterChildrenIntoADescendant) {
  SKIP_IF_NOT_ROOT();
  EXPECT_CHILD_OK([] {
    int own = open("/proc/self/ns/pid", O_RDONLY);
    CHILD_CHECK(own >= 0);
    int p[2];
    CHILD_CHECK(pipe(p) == 0);
    pid_t init = CloneNewPID([&] {
      char c;
      close(p[1]);
      read(p[0], &c, 1);
      return 0;
    });
    CHILD_CHECK(init > 0);
    close(p[0]);
    std::string path = "/proc/" + std::to_string(init) + "/ns/pid";
    int target = open(path.c_str(), O_RDONLY);
    CHILD_CHECK(target >= 0);
    // Only namespace files, of the type asked for.
    CHILD_CHECK(setns(target, CLONE_NEWNET) == -1 && errno == EINVAL);
    int notns = open("/proc/self/status", O_RDONLY);
    CHILD_CHECK(setns(notns, 0) == -1 && errno == EINVAL);
    close(notns);
    CHILD_CHECK(setns(target, CLONE_NEWPID) == 0);
    CHILD_CHECK(Readlink("/proc/self/ns/pid_for_children") == Readlink(path));
    pid_t c = fork();
    if (c == 0) {
      // Numbered in init's namespace, its parent outside; it cannot
      // move its children up to an ancestor namespace.
      if (getpid() != 2 || getppid() != 0) _exit(1);
      _exit(setns(own, CLONE_NEWPID) == -1 && errno == EINVAL ? 0 : 2);
    }
    int st;
    CHILD_CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    // Back to our own namespace for children.
    CHILD_CHECK(setns(own, 0) == 0);
    CHILD_CHECK(Readlink("/proc/self/ns/pid_for_children") == Readlink("/proc/self/ns/pid"));
    close(p[1]);
    CHILD_CHECK(waitpid(init, &st, 0) == init && WIFEXITED(st));
    close(own);
    close(target);
    return 0;
  });
}

TEST(PidNamespace, NestingIsLimitedTo32Levels) {
  SKIP_IF_NOT_ROOT();
  int p[2];
  ASSERT_OK(pipe(p));
  EXPECT_CHILD_OK([&] {
    // Each level makes the next; the deepest reports how deep it got and
    // how the next attempt failed.
    for (int depth = 0;; depth++) {
      if (unshare(CLONE_NEWPID) != 0) {
        int r[2] = {depth, errno};
        write(p[1], r, sizeof(r));
        return 0;
      }
      pid_t c = fork();
      if (c < 0) return 1;
      if (c > 0) {
        int st;
        if (waitpid(c, &st, 0) != c || !WIFEXITED(st)) return 2;
        return WEXITSTATUS(st);
      }
    }
  });
  int r[2] = {0, 0};
  ASSERT_RET(sizeof(r), read(p[0], r, sizeof(r)));
  EXPECT_EQ(r[0], 32);
  EXPECT_EQ(r[1], ENOSPC);
  close(p[0]);
  close(p[1]);
}

TEST(PidNamespace, NewPidNeedsCapSysAdmin) {
  SKIP_IF_NOT_ROOT();
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(setuid(65534) == 0);
    CHILD_CHECK(unshare(CLONE_NEWPID) == -1 && errno == EPERM);
    return 0;
  });
}

}  // namespace
