// Job control in orphaned process groups (POSIX; credentials(7),
// setpgid(2), termios(3)): a group orphaned while one of its members is
// stopped is sent SIGHUP and SIGCONT; SIGTSTP, SIGTTIN and SIGTTOU do not
// stop an orphaned group; a background read from the terminal by a member
// of one gets EIO rather than SIGTTIN.
//
// Each test runs in a child that makes itself a subreaper in its own
// session: orphans come back to it, and it does not count as their link
// to their session.
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <termios.h>

#include "test_util.h"

namespace {

// BecomeReaperInNewSession is the common start of the tests' children.
bool BecomeReaperInNewSession() {
  return setsid() != -1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
}

TEST(OrphanedProcessGroup, StoppedMemberGetsHangupAndContinue) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(BecomeReaperInNewSession());
    int p[2];
    CHILD_CHECK(pipe(p) == 0);
    pid_t leader = fork();
    if (leader == 0) {
      // A session with a job in its own group: the session leader's
      // group is the job's link, until the leader exits.
      if (setsid() == -1) _exit(10);
      pid_t job = fork();
      if (job == 0) {
        setpgid(0, 0);
        raise(SIGSTOP);
        // Continued by the SIGCONT that follows SIGHUP: SIGHUP, left at
        // its default, kills us first.
        _exit(11);
      }
      int st;
      if (waitpid(job, &st, WUNTRACED) != job || !WIFSTOPPED(st)) _exit(12);
      write(p[1], &job, sizeof(job));
      _exit(0);
    }
    pid_t job = 0;
    CHILD_CHECK(read(p[0], &job, sizeof(job)) == sizeof(job));
    int st;
    CHILD_CHECK(waitpid(leader, &st, 0) == leader && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    // The job is ours now (we are the subreaper).
    CHILD_CHECK(waitpid(job, &st, 0) == job);
    CHILD_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGHUP);
    return 0;
  });
}

TEST(OrphanedProcessGroup, HangupIsHandledAfterContinue) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(BecomeReaperInNewSession());
    int p[2];
    CHILD_CHECK(pipe(p) == 0);
    pid_t leader = fork();
    if (leader == 0) {
      if (setsid() == -1) _exit(10);
      pid_t job = fork();
      if (job == 0) {
        static volatile sig_atomic_t hup = 0, cont = 0;
        InstallHandler(SIGHUP, [](int) { hup = 1; });
        InstallHandler(SIGCONT, [](int) { cont = 1; });
        setpgid(0, 0);
        raise(SIGSTOP);
        while (!hup || !cont) pause();
        _exit(42);
      }
      int st;
      if (waitpid(job, &st, WUNTRACED) != job || !WIFSTOPPED(st)) _exit(12);
      _exit(0);
    }
    int st;
    CHILD_CHECK(waitpid(leader, &st, 0) == leader && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pid_t job = RETRY_EINTR(wait(&st));
    CHILD_CHECK(job > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 42);
    return 0;
  });
}

TEST(OrphanedProcessGroup, JobControlStopSignalsAreDiscarded) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(BecomeReaperInNewSession());
    pid_t c = fork();
    if (c == 0) {
      // Alone in a session of our own: an orphaned group.
      if (setsid() == -1) _exit(10);
      raise(SIGTSTP);
      raise(SIGTTIN);
      raise(SIGTTOU);
      // SIGSTOP still stops.
      raise(SIGSTOP);
      _exit(7);
    }
    int st;
    CHILD_CHECK(waitpid(c, &st, WUNTRACED) == c);
    CHILD_CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHILD_CHECK(kill(c, SIGCONT) == 0);
    CHILD_CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 7);
    return 0;
  });
}

TEST(OrphanedProcessGroup, BackgroundTerminalReadIsEIO) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(BecomeReaperInNewSession());
    int p[2];
    CHILD_CHECK(pipe(p) == 0);
    pid_t leader = fork();
    if (leader == 0) {
      // A session leader with a controlling terminal...
      if (setsid() == -1) _exit(10);
      int master = posix_openpt(O_RDWR | O_NOCTTY);
      if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) _exit(11);
      int replica = open(ptsname(master), O_RDWR);
      if (replica < 0 || ioctl(replica, TIOCSCTTY, 0) != 0) _exit(12);
      // ...and a middle process whose child moves to a background group.
      pid_t mid = fork();
      if (mid == 0) {
        pid_t parent = getpid();
        pid_t job = fork();
        if (job == 0) {
          setpgid(0, 0);
          char c = 'j';
          write(p[1], &c, 1);
          // Once the middle process is gone the group is orphaned.
          while (getppid() == parent) SleepMs(2);
          char buf[1];
          ssize_t n = read(replica, buf, 1);
          _exit(n == -1 && errno == EIO ? 0 : 20);
        }
        _exit(0);
      }
      char c;
      if (read(p[0], &c, 1) != 1) _exit(13);
      int st;
      if (waitpid(mid, &st, 0) != mid) _exit(14);
      // Stay the session leader until the job is done.
      SleepMs(300);
      _exit(0);
    }
    // The job is reparented to us once the middle process exits.
    int st;
    pid_t w;
    bool job_ok = false;
    while ((w = RETRY_EINTR(waitpid(-1, &st, WUNTRACED))) > 0) {
      CHILD_CHECK(!WIFSTOPPED(st));  // no SIGTTIN stop
      if (w == leader) {
        CHILD_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
      } else {
        CHILD_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        job_ok = true;
      }
    }
    CHILD_CHECK(job_ok);
    return 0;
  });
}

}  // namespace
