// fork(2), vfork(2), clone(2), execve(2), wait4(2), waitid(2), exit(2),
// exit_group(2), getpid/getppid/gettid, setsid/setpgid.
#include <sched.h>
#include <sys/resource.h>
#include <linux/sched.h>
#include <pthread.h>
#include <thread>

#include "test_util.h"

namespace {

TEST(Fork, ChildSeesDistinctPidAndParent) {
  pid_t parent = getpid();
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t pid = fork();
  ASSERT_OK(pid);
  if (pid == 0) {
    pid_t info[2] = {getpid(), getppid()};
    write(p[1], info, sizeof(info));
    _exit(0);
  }
  pid_t info[2];
  ASSERT_RET(sizeof(info), read(p[0], info, sizeof(info)));
  EXPECT_EQ(info[0], pid);
  EXPECT_EQ(info[1], parent);
  int status;
  ASSERT_RET(pid, waitpid(pid, &status, 0));
  EXPECT_TRUE(ExitedWith(status, 0));
  close(p[0]);
  close(p[1]);
}

TEST(Fork, ExitStatusPropagates) {
  EXPECT_TRUE(ExitedWith(RunInChild([] { return 42; }), 42));
  EXPECT_TRUE(ExitedWith(RunInChild([] { return 256 + 3; }), 3));  // low 8 bits
}

TEST(Fork, ChildInheritsFdsButNotLocksOrAlarms) {
  int p[2];
  ASSERT_OK(pipe(p));
  Fd r(p[0]), w(p[1]);
  int wfd = w.get();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(alarm(0) == 0);  // pending alarms are not inherited
    return write(wfd, "c", 1) == 1 ? 0 : 1;
  });
  char c;
  EXPECT_RET(1, read(r.get(), &c, 1));
}

TEST(Fork, ChildPendingSignalsCleared) {
  sigset_t m, old;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR1);
  ASSERT_OK(sigprocmask(SIG_BLOCK, &m, &old));
  ASSERT_OK(raise(SIGUSR1));
  int st = RunInChild([] {
    sigset_t pend;
    sigpending(&pend);
    return sigismember(&pend, SIGUSR1) ? 1 : 0;
  });
  // Consume our own pending signal before restoring the mask.
  int sig;
  sigwait(&m, &sig);
  sigprocmask(SIG_SETMASK, &old, nullptr);
  EXPECT_TRUE(ExitedWith(st, 0));
}

TEST(Vfork, ParentResumesAfterChildExits) {
  volatile int shared = 0;
  pid_t pid = vfork();
  if (pid == 0) {
    shared = 1;  // vfork children share memory with the parent
    _exit(7);
  }
  ASSERT_OK(pid);
  EXPECT_EQ(shared, 1);
  int status;
  ASSERT_RET(pid, waitpid(pid, &status, 0));
  EXPECT_TRUE(ExitedWith(status, 7));
}

TEST(Execve, RunsProgramWithArgsAndEnv) {
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    char* argv[] = {(char*)"sh", (char*)"-c", (char*)"printf '%s:%s' \"$0\" \"$FOO\"", nullptr};
    char* envp[] = {(char*)"FOO=bar", nullptr};
    execve("/bin/sh", argv, envp);
    _exit(127);
  }
  close(p[1]);
  char buf[64] = {};
  ReadFull(p[0], buf, sizeof(buf) - 1);
  close(p[0]);
  int status;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(ExitedWith(status, 0));
  EXPECT_STREQ(buf, "sh:bar");
}

TEST(Execve, MissingFileIsENOENT) {
  char* argv[] = {(char*)"x", nullptr};
  EXPECT_ERRNO(ENOENT, execve("/nonexistent/prog", argv, nullptr));
}

TEST(Execve, NotExecutableIsEACCES) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("f"), "#!/bin/sh\n"));
  ASSERT_OK(chmod(d.Sub("f").c_str(), 0644));
  char* argv[] = {(char*)"x", nullptr};
  // Even root needs at least one execute bit to run a regular file.
  EXPECT_ERRNO(EACCES, execve(d.Sub("f").c_str(), argv, nullptr));
}

TEST(Execve, DirectoryIsEACCES) {
  char* argv[] = {(char*)"x", nullptr};
  EXPECT_ERRNO(EACCES, execve("/", argv, nullptr));
}

TEST(Execve, GarbageFormatIsENOEXEC) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("f"), std::string("\x01\x02\x03garbage", 10)));
  ASSERT_OK(chmod(d.Sub("f").c_str(), 0755));
  char* argv[] = {(char*)"x", nullptr};
  EXPECT_ERRNO(ENOEXEC, execve(d.Sub("f").c_str(), argv, nullptr));
}

TEST(Execve, BadArgvPointerIsEFAULT) {
  EXPECT_ERRNO(EFAULT, execve("/bin/true", (char**)kBadPtr, nullptr));
}

TEST(Execve, CloexecFdsAreClosed) {
  int p[2];
  ASSERT_OK(pipe(p));
  Fd r(p[0]), w(p[1]);
  Fd marked(open("/dev/null", O_RDONLY | O_CLOEXEC));
  std::string script = "test -e /proc/self/fd/" + std::to_string(marked.get()) + " && echo open || echo closed";
  pid_t pid = fork();
  if (pid == 0) {
    dup2(w.get(), 1);
    execl("/bin/sh", "sh", "-c", script.c_str(), (char*)nullptr);
    _exit(127);
  }
  w.reset();
  char buf[16] = {};
  ReadFull(r.get(), buf, sizeof(buf) - 1);
  waitpid(pid, nullptr, 0);
  EXPECT_STREQ(buf, "closed\n");
}

TEST(Execve, ShebangScriptRuns) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("s"), "#!/bin/sh\nexit 9\n"));
  ASSERT_OK(chmod(d.Sub("s").c_str(), 0755));
  std::string path = d.Sub("s");
  int st = RunInChild([&] {
    char* argv[] = {(char*)"s", nullptr};
    execve(path.c_str(), argv, nullptr);
    return 127;
  });
  EXPECT_TRUE(ExitedWith(st, 9));
}

TEST(Wait, NoChildrenIsECHILD) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(wait(nullptr) == -1 && errno == ECHILD);
    return 0;
  });
}

TEST(Wait, WnohangWithRunningChildReturnsZero) {
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    read(p[0], &c, 1);
    _exit(0);
  }
  EXPECT_RET(0, waitpid(pid, nullptr, WNOHANG));
  write(p[1], "x", 1);
  EXPECT_RET(pid, waitpid(pid, nullptr, 0));
  close(p[0]);
  close(p[1]);
}

TEST(Wait, SignaledChildStatus) {
  pid_t pid = fork();
  if (pid == 0) {
    pause();
    _exit(0);
  }
  ASSERT_OK(kill(pid, SIGKILL));
  int status;
  ASSERT_RET(pid, waitpid(pid, &status, 0));
  EXPECT_TRUE(KilledBy(status, SIGKILL));
}

TEST(Wait, StoppedAndContinuedChild) {
  pid_t pid = fork();
  if (pid == 0) {
    for (;;) pause();
  }
  ASSERT_OK(kill(pid, SIGSTOP));
  int status;
  ASSERT_RET(pid, waitpid(pid, &status, WUNTRACED));
  EXPECT_TRUE(WIFSTOPPED(status));
  EXPECT_EQ(WSTOPSIG(status), SIGSTOP);
  ASSERT_OK(kill(pid, SIGCONT));
  ASSERT_RET(pid, waitpid(pid, &status, WCONTINUED));
  EXPECT_TRUE(WIFCONTINUED(status));
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
}

TEST(Wait, InvalidOptionsIsEINVAL) {
  EXPECT_ERRNO(EINVAL, waitpid(-1, nullptr, 0x10000000));
}

TEST(Wait4, ReportsRusage) {
  pid_t pid = fork();
  if (pid == 0) {
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < 20000000; i++) x += i;
    _exit(0);
  }
  struct rusage ru = {};
  int status;
  ASSERT_RET(pid, wait4(pid, &status, 0, &ru));
  EXPECT_TRUE(ExitedWith(status, 0));
  EXPECT_GT(ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec, 0);
}

TEST(Wait4, SpecificPidNotChildIsECHILD) {
  EXPECT_ERRNO(ECHILD, wait4(1, nullptr, WNOHANG, nullptr));
}

TEST(Waitid, ExitedChildInfo) {
  pid_t pid = fork();
  if (pid == 0) _exit(5);
  siginfo_t si = {};
  ASSERT_OK(waitid(P_PID, pid, &si, WEXITED));
  EXPECT_EQ(si.si_pid, pid);
  EXPECT_EQ(si.si_signo, SIGCHLD);
  EXPECT_EQ(si.si_code, CLD_EXITED);
  EXPECT_EQ(si.si_status, 5);
}

TEST(Waitid, WnowaitLeavesChildWaitable) {
  pid_t pid = fork();
  if (pid == 0) _exit(3);
  siginfo_t si = {};
  ASSERT_OK(waitid(P_PID, pid, &si, WEXITED | WNOWAIT));
  EXPECT_EQ(si.si_pid, pid);
  int status;
  ASSERT_RET(pid, waitpid(pid, &status, 0));
  EXPECT_TRUE(ExitedWith(status, 3));
}

TEST(Waitid, NoStateFlagsIsEINVAL) {
  siginfo_t si;
  EXPECT_ERRNO(EINVAL, waitid(P_ALL, 0, &si, 0));
}

TEST(Waitid, KilledChildCode) {
  pid_t pid = fork();
  if (pid == 0) {
    pause();
    _exit(0);
  }
  kill(pid, SIGTERM);
  siginfo_t si = {};
  ASSERT_OK(waitid(P_PID, pid, &si, WEXITED));
  EXPECT_EQ(si.si_code, CLD_KILLED);
  EXPECT_EQ(si.si_status, SIGTERM);
}

TEST(Exit, ParentGetsSIGCHLD) {
  EXPECT_CHILD_OK([] {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGCHLD);
    sigprocmask(SIG_BLOCK, &m, nullptr);
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    siginfo_t si;
    struct timespec ts = {30, 0};
    CHILD_CHECK(sigtimedwait(&m, &si, &ts) == SIGCHLD);
    CHILD_CHECK(si.si_pid == pid);
    waitpid(pid, nullptr, 0);
    return 0;
  });
}

TEST(Exit, OrphansAreReparented) {
  EXPECT_CHILD_OK([] {
    int p[2];
    CHILD_CHECK(pipe(p) == 0);
    pid_t mid = fork();
    if (mid == 0) {
      pid_t grandchild = fork();
      if (grandchild == 0) {
        // Wait until our parent is gone, then report our new parent.
        while (getppid() != 1) {
          pid_t pp = getppid();
          struct stat st;
          if (stat(("/proc/" + std::to_string(pp)).c_str(), &st) != 0) break;
          SleepMs(5);
          if (pp != getppid()) break;
        }
        pid_t np = getppid();
        write(p[1], &np, sizeof(np));
        _exit(0);
      }
      _exit(0);
    }
    waitpid(mid, nullptr, 0);
    pid_t np = 0;
    CHILD_CHECK(read(p[0], &np, sizeof(np)) == sizeof(np));
    CHILD_CHECK(np != mid);
    return 0;
  });
}

TEST(ExitGroup, ThreadExitGroupKillsAllThreads) {
  int st = RunInChild([] {
    pthread_t t;
    pthread_create(&t, nullptr, [](void*) -> void* {
      syscall(SYS_exit_group, 17);
      return nullptr;
    }, nullptr);
    for (;;) pause();
    return 0;
  });
  EXPECT_TRUE(ExitedWith(st, 17));
}

TEST(Clone, ThreadSharesAddressSpace) {
  static volatile int shared;
  shared = 0;
  std::vector<char> stack(64 * 1024);
  auto fn = [](void*) -> int {
    shared = 99;
    return 0;
  };
  pid_t tid = clone(fn, stack.data() + stack.size(),
                    CLONE_VM | CLONE_FS | CLONE_FILES | SIGCHLD, nullptr);
  ASSERT_OK(tid);
  int status;
  ASSERT_RET(tid, waitpid(tid, &status, 0));
  EXPECT_TRUE(ExitedWith(status, 0));
  EXPECT_EQ(shared, 99);
}

TEST(Clone, WithoutVmChildHasOwnMemory) {
  static volatile int value;
  value = 1;
  std::vector<char> stack(64 * 1024);
  pid_t pid = clone([](void*) -> int {
    value = 2;
    return value;
  }, stack.data() + stack.size(), SIGCHLD, nullptr);
  ASSERT_OK(pid);
  int status;
  ASSERT_RET(pid, waitpid(pid, &status, 0));
  EXPECT_TRUE(ExitedWith(status, 2));
  EXPECT_EQ(value, 1);
}

TEST(Clone, ThreadWithoutSighandIsEINVAL) {
  std::vector<char> stack(16 * 1024);
  EXPECT_ERRNO(EINVAL, clone([](void*) -> int { return 0; }, stack.data() + stack.size(),
                             CLONE_THREAD, nullptr));
}

TEST(Clone, SighandWithoutVmIsEINVAL) {
  std::vector<char> stack(16 * 1024);
  EXPECT_ERRNO(EINVAL, clone([](void*) -> int { return 0; }, stack.data() + stack.size(),
                             CLONE_SIGHAND, nullptr));
}

TEST(Clone, ParentSettidWritesTid) {
  pid_t ptid = 0;
  std::vector<char> stack(64 * 1024);
  pid_t pid = clone([](void*) -> int { return 0; }, stack.data() + stack.size(),
                    CLONE_PARENT_SETTID | SIGCHLD, nullptr, &ptid);
  ASSERT_OK(pid);
  waitpid(pid, nullptr, 0);
  EXPECT_EQ(ptid, pid);
}

TEST(Clone3, SmallStructIsEINVAL) {
  struct clone_args args = {};
  EXPECT_ERRNO(EINVAL, syscall(SYS_clone3, &args, 8));
}

TEST(Clone3, ForkLike) {
  struct clone_args args = {};
  args.exit_signal = SIGCHLD;
  long pid = syscall(SYS_clone3, &args, sizeof(args));
  if (pid == 0) _exit(11);
  ASSERT_OK(pid);
  int status;
  ASSERT_RET(pid, waitpid(pid, &status, 0));
  EXPECT_TRUE(ExitedWith(status, 11));
}

TEST(Ids, GettidEqualsPidInMainThread) {
  EXPECT_EQ(Gettid(), getpid());
  pid_t other = 0;
  std::thread t([&] { other = Gettid(); });
  t.join();
  EXPECT_NE(other, getpid());
}

TEST(Session, SetsidMakesLeader) {
  EXPECT_CHILD_OK([] {
    pid_t sid = setsid();
    CHILD_CHECK(sid == getpid());
    CHILD_CHECK(getsid(0) == getpid());
    CHILD_CHECK(getpgrp() == getpid());
    // A session leader cannot create another session.
    CHILD_CHECK(setsid() == -1 && errno == EPERM);
    return 0;
  });
}

TEST(Session, SetpgidMovesToNewGroup) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(setpgid(0, 0) == 0);
    CHILD_CHECK(getpgid(0) == getpid());
    CHILD_CHECK(setpgid(0, -1) == -1 && errno == EINVAL);
    return 0;
  });
}

TEST(Session, KillProcessGroup) {
  EXPECT_CHILD_OK([] {
    setpgid(0, 0);
    pid_t a = fork();
    if (a == 0) {
      pause();
      _exit(0);
    }
    signal(SIGUSR1, SIG_IGN);
    CHILD_CHECK(kill(0, SIGUSR1) == 0);
    int st;
    waitpid(a, &st, 0);
    CHILD_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1);
    return 0;
  });
}

}  // namespace
