// futex(2): FUTEX_WAIT, FUTEX_WAKE, bitsets, requeue, timeouts, private
// futexes, across threads and processes.
#include <linux/futex.h>
#include <pthread.h>

#include <atomic>
#include <thread>

#include "test_util.h"

namespace {

TEST(Futex, WaitValueMismatchIsEAGAIN) {
  int w = 1;
  EXPECT_ERRNO(EAGAIN, Futex(&w, FUTEX_WAIT_PRIVATE, 2));
}

TEST(Futex, WaitTimesOut) {
  int w = 0;
  struct timespec ts = {0, 20 * 1000000};
  int64_t start = NowNs();
  EXPECT_ERRNO(ETIMEDOUT, Futex(&w, FUTEX_WAIT_PRIVATE, 0, &ts));
  EXPECT_GE(NowNs() - start, 20 * 1000000LL);
}

TEST(Futex, WakeWithNoWaitersReturnsZero) {
  int w = 0;
  EXPECT_RET(0, Futex(&w, FUTEX_WAKE_PRIVATE, 10));
}

TEST(Futex, BadAddressIsEFAULT) {
  EXPECT_ERRNO(EFAULT, Futex(kBadPtr, FUTEX_WAIT_PRIVATE, 0));
}

TEST(Futex, UnalignedAddressIsEINVAL) {
  alignas(8) char buf[8] = {};
  EXPECT_ERRNO(EINVAL, Futex(buf + 1, FUTEX_WAIT_PRIVATE, 0));
}

TEST(Futex, InvalidTimeoutIsEINVAL) {
  int w = 0;
  struct timespec ts = {0, -1};
  EXPECT_ERRNO(EINVAL, Futex(&w, FUTEX_WAIT_PRIVATE, 0, &ts));
}

TEST(Futex, UnknownOpIsENOSYS) {
  int w = 0;
  EXPECT_ERRNO(ENOSYS, Futex(&w, 127, 0));
}

TEST(Futex, WakeWakesThreadWaiter) {
  std::atomic<int> word{0};
  std::atomic<bool> woke{false};
  std::thread t([&] {
    while (word.load() == 0) {
      Futex(&word, FUTEX_WAIT_PRIVATE, 0);
    }
    woke = true;
  });
  SleepMs(20);
  word = 1;
  long n;
  // Keep waking until the thread has observed the change.
  do {
    n = Futex(&word, FUTEX_WAKE_PRIVATE, 1);
    EXPECT_GE(n, 0);
    SleepMs(1);
  } while (!woke.load());
  t.join();
}

TEST(Futex, WakeCountIsHonoured) {
  std::atomic<int> word{0};
  std::atomic<int> waiting{0}, woken{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; i++) {
    ts.emplace_back([&] {
      waiting++;
      while (Futex(&word, FUTEX_WAIT_PRIVATE, 0) != 0 && errno == EINTR) {
      }
      woken++;
    });
  }
  while (waiting.load() < 3) SleepMs(1);
  SleepMs(50);  // let them enter FUTEX_WAIT
  long n = Futex(&word, FUTEX_WAKE_PRIVATE, 2);
  EXPECT_LE(n, 2);
  // Wake everyone that remains so the threads exit.
  word = 1;
  while (woken.load() < 3) {
    Futex(&word, FUTEX_WAKE_PRIVATE, 100);
    SleepMs(1);
  }
  for (auto& t : ts) t.join();
}

TEST(Futex, SharedFutexAcrossProcesses) {
  Mapping m = MapAnon(PageSize(), PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(m.ok());
  std::atomic<int>* word = reinterpret_cast<std::atomic<int>*>(m.ptr());
  pid_t pid = fork();
  if (pid == 0) {
    while (word->load() == 0) Futex(word, FUTEX_WAIT, 0);
    _exit(word->load() == 42 ? 0 : 1);
  }
  SleepMs(20);
  word->store(42);
  int status;
  for (;;) {
    Futex(word, FUTEX_WAKE, 1);
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    SleepMs(1);
  }
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST(Futex, WaitBitsetZeroIsEINVAL) {
  int w = 0;
  EXPECT_ERRNO(EINVAL, Futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, nullptr, nullptr, 0));
}

TEST(Futex, WaitBitsetAbsoluteTimeout) {
  int w = 0;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_nsec += 20 * 1000000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  EXPECT_ERRNO(ETIMEDOUT, Futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, &ts, nullptr, FUTEX_BITSET_MATCH_ANY));
}

TEST(Futex, WakeBitsetOnlyWakesMatchingWaiter) {
  std::atomic<int> word{0};
  std::atomic<int> done{0};
  std::thread t([&] {
    while (word.load() == 0) Futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, nullptr, nullptr, 0x1);
    done = 1;
  });
  SleepMs(50);
  EXPECT_RET(0, Futex(&word, FUTEX_WAKE_BITSET_PRIVATE, 1, nullptr, nullptr, 0x2));
  word = 1;
  while (!done.load()) {
    Futex(&word, FUTEX_WAKE_BITSET_PRIVATE, 1, nullptr, nullptr, 0x1);
    SleepMs(1);
  }
  t.join();
}

TEST(Futex, CmpRequeueValueMismatchIsEAGAIN) {
  int a = 1, b = 0;
  EXPECT_ERRNO(EAGAIN, syscall(SYS_futex, &a, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, &b, 5));
}

TEST(Futex, CmpRequeueMovesWaiters) {
  std::atomic<int> a{0}, b{0};
  std::atomic<int> done{0};
  std::thread t([&] {
    Futex(&a, FUTEX_WAIT_PRIVATE, 0);
    done = 1;
  });
  // Wait until the thread is queued on a: requeue reports it.
  long moved = 0;
  for (int i = 0; i < 5000 && moved == 0; i++) {
    SleepMs(1);
    moved = syscall(SYS_futex, &a, FUTEX_CMP_REQUEUE_PRIVATE, 0, 1, &b, 0);
  }
  EXPECT_EQ(moved, 1);
  // Now it sleeps on b; waking a does nothing, waking b releases it.
  EXPECT_RET(0, Futex(&a, FUTEX_WAKE_PRIVATE, 1));
  EXPECT_RET(1, Futex(&b, FUTEX_WAKE_PRIVATE, 1));
  t.join();
  EXPECT_EQ(done.load(), 1);
}

TEST(Futex, WaitInterruptedBySignal) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(InstallHandler(SIGALRM, NoopHandler) == 0);
    alarm(1);
    int w = 0;
    CHILD_CHECK(Futex(&w, FUTEX_WAIT_PRIVATE, 0) == -1 && errno == EINTR);
    return 0;
  });
}

TEST(Futex, ChildClearTidWakesOnThreadExit) {
  // pthread_join relies on CLONE_CHILD_CLEARTID + futex wake.
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, nullptr, [](void*) -> void* { return (void*)7; }, nullptr), 0);
  void* ret;
  ASSERT_EQ(pthread_join(th, &ret), 0);
  EXPECT_EQ(ret, (void*)7);
}

}  // namespace
