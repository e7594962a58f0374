// mmap(2), munmap(2), mprotect(2), mremap(2), madvise(2), mincore(2),
// msync(2), brk(2).
#include <setjmp.h>

#include "test_util.h"

namespace {

// Runs fn in a child and reports whether it was killed by SIGSEGV.
bool SegfaultsInChild(const std::function<void()>& fn) {
  int status = RunInChild([&] {
    fn();
    return 0;
  });
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

TEST(Mmap, AnonymousIsZeroFilledAndWritable) {
  size_t ps = PageSize();
  Mapping m = MapAnon(4 * ps);
  ASSERT_TRUE(m.ok()) << strerror(errno);
  EXPECT_EQ(m.addr() % ps, 0u);
  for (size_t i = 0; i < 4 * ps; i += 512) EXPECT_EQ(m.ptr()[i], 0);
  memset(m.ptr(), 0x5a, 4 * ps);
  EXPECT_EQ(m.ptr()[4 * ps - 1], 0x5a);
}

TEST(Mmap, ZeroLengthIsEINVAL) {
  EXPECT_EQ(mmap(nullptr, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
}

TEST(Mmap, NeitherSharedNorPrivateIsEINVAL) {
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ, MAP_ANONYMOUS, -1, 0), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
}

TEST(Mmap, UnalignedOffsetIsEINVAL) {
  Fd f(open("/dev/zero", O_RDONLY));
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, f.get(), 100), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
}

TEST(Mmap, BadFdIsEBADF) {
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, -1, 0), MAP_FAILED);
  EXPECT_EQ(errno, EBADF);
}

TEST(Mmap, SharedWritableOnReadOnlyFdIsEACCES) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), std::string(4096, 'x')));
  Fd f(open(d.Sub("a").c_str(), O_RDONLY));
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EACCES);
}

TEST(Mmap, WriteOnlyFdIsEACCES) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), std::string(4096, 'x')));
  Fd f(open(d.Sub("a").c_str(), O_WRONLY));
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, f.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EACCES);
}

TEST(Mmap, FileMappingReflectsContents) {
  TempDir d;
  std::string data = Pattern(8192);
  ASSERT_TRUE(WriteFile(d.Sub("a"), data));
  Fd f(open(d.Sub("a").c_str(), O_RDONLY));
  Mapping m(mmap(nullptr, 8192, PROT_READ, MAP_PRIVATE, f.get(), 4096), 8192);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(memcmp(m.ptr(), data.data() + 4096, 4096), 0);
}

TEST(Mmap, SharedFileWritesReachFile) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), std::string(4096, 'a')));
  Fd f(open(d.Sub("a").c_str(), O_RDWR));
  Mapping m(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f.get(), 0), 4096);
  ASSERT_TRUE(m.ok());
  memcpy(m.ptr(), "shared", 6);
  ASSERT_OK(msync(m.ptr(), 4096, MS_SYNC));
  char buf[6];
  ASSERT_RET(6, pread(f.get(), buf, 6, 0));
  EXPECT_EQ(std::string(buf, 6), "shared");
}

TEST(Mmap, PrivateFileWritesStayPrivate) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), std::string(4096, 'a')));
  Fd f(open(d.Sub("a").c_str(), O_RDWR));
  Mapping m(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, f.get(), 0), 4096);
  ASSERT_TRUE(m.ok());
  m.ptr()[0] = 'Z';
  char c;
  ASSERT_RET(1, pread(f.get(), &c, 1, 0));
  EXPECT_EQ(c, 'a');
}

TEST(Mmap, FileWritesVisibleThroughSharedMapping) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), std::string(4096, 'a')));
  Fd f(open(d.Sub("a").c_str(), O_RDWR));
  Mapping m(mmap(nullptr, 4096, PROT_READ, MAP_SHARED, f.get(), 0), 4096);
  ASSERT_TRUE(m.ok());
  ASSERT_RET(3, pwrite(f.get(), "new", 3, 10));
  EXPECT_EQ(std::string(m.ptr() + 10, 3), "new");
}

TEST(Mmap, AccessBeyondEofIsSIGBUS) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "tiny"));
  Fd f(open(d.Sub("a").c_str(), O_RDONLY));
  size_t ps = PageSize();
  Mapping m(mmap(nullptr, 2 * ps, PROT_READ, MAP_SHARED, f.get(), 0), 2 * ps);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.ptr()[4], 0);  // rest of the last page reads as zero
  char* p = m.ptr();
  EXPECT_TRUE(KilledBy(RunInChild([&] {
    volatile char c = p[ps];
    (void)c;
    return 0;
  }), SIGBUS));
}

TEST(Mmap, SharedAnonymousVisibleAcrossFork) {
  Mapping m = MapAnon(4096, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(m.ok());
  char* p = m.ptr();
  EXPECT_CHILD_OK([&] {
    strcpy(p, "from child");
    return 0;
  });
  EXPECT_STREQ(p, "from child");
}

TEST(Mmap, PrivateAnonymousCopyOnWriteAcrossFork) {
  Mapping m = MapAnon(4096);
  ASSERT_TRUE(m.ok());
  strcpy(m.ptr(), "parent");
  char* p = m.ptr();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(strcmp(p, "parent") == 0);
    strcpy(p, "child");
    return 0;
  });
  EXPECT_STREQ(p, "parent");
}

TEST(Mmap, FixedReplacesExistingMapping) {
  size_t ps = PageSize();
  Mapping m = MapAnon(3 * ps);
  ASSERT_TRUE(m.ok());
  memset(m.ptr(), 1, 3 * ps);
  void* r = mmap(m.ptr() + ps, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  ASSERT_EQ(r, m.ptr() + ps);
  EXPECT_EQ(m.ptr()[0], 1);
  EXPECT_EQ(m.ptr()[ps], 0);
  EXPECT_EQ(m.ptr()[2 * ps], 1);
}

TEST(Mmap, FixedNoReplaceOnExistingIsEEXIST) {
  Mapping m = MapAnon(PageSize());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(mmap(m.ptr(), PageSize(), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0), MAP_FAILED);
  EXPECT_EQ(errno, EEXIST);
}

TEST(Mmap, FixedUnalignedIsEINVAL) {
  Mapping m = MapAnon(2 * PageSize());
  EXPECT_EQ(mmap(m.ptr() + 1, PageSize(), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
}

TEST(Mmap, HintIsUsedWhenFree) {
  size_t ps = PageSize();
  Mapping probe = MapAnon(4 * ps);
  ASSERT_TRUE(probe.ok());
  char* hint = probe.ptr() + ps;
  probe.reset();
  Mapping m(mmap(hint, ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), ps);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.ptr(), hint);
}

TEST(Mmap, ProtNoneFaults) {
  Mapping m = MapAnon(PageSize(), PROT_NONE);
  ASSERT_TRUE(m.ok());
  char* p = m.ptr();
  EXPECT_TRUE(SegfaultsInChild([&] { *(volatile char*)p = 1; }));
}

TEST(Munmap, AccessAfterUnmapFaults) {
  Mapping m = MapAnon(PageSize());
  char* p = m.ptr();
  ASSERT_OK(munmap(p, PageSize()));
  m.release();
  EXPECT_TRUE(SegfaultsInChild([&] { *(volatile char*)p = 1; }));
}

TEST(Munmap, UnalignedIsEINVAL) {
  Mapping m = MapAnon(PageSize());
  EXPECT_ERRNO(EINVAL, munmap(m.ptr() + 1, 10));
  EXPECT_ERRNO(EINVAL, munmap(m.ptr(), 0));
}

TEST(Munmap, UnmappedRangeSucceeds) {
  size_t ps = PageSize();
  Mapping m = MapAnon(ps);
  char* p = m.ptr();
  m.reset();
  EXPECT_OK(munmap(p, ps));
}

TEST(Munmap, MiddleSplitsMapping) {
  size_t ps = PageSize();
  Mapping m = MapAnon(3 * ps);
  ASSERT_OK(munmap(m.ptr() + ps, ps));
  m.ptr()[0] = 1;
  m.ptr()[2 * ps] = 1;
  unsigned char vec[3];
  EXPECT_ERRNO(ENOMEM, mincore(m.ptr(), 3 * ps, vec));
}

TEST(Mprotect, ReadOnlyBlocksWrites) {
  Mapping m = MapAnon(PageSize());
  m.ptr()[0] = 7;
  ASSERT_OK(mprotect(m.ptr(), PageSize(), PROT_READ));
  EXPECT_EQ(m.ptr()[0], 7);
  char* p = m.ptr();
  EXPECT_TRUE(SegfaultsInChild([&] { *(volatile char*)p = 1; }));
  ASSERT_OK(mprotect(m.ptr(), PageSize(), PROT_READ | PROT_WRITE));
  m.ptr()[0] = 8;
  EXPECT_EQ(m.ptr()[0], 8);
}

TEST(Mprotect, UnalignedIsEINVAL) {
  Mapping m = MapAnon(PageSize());
  EXPECT_ERRNO(EINVAL, mprotect(m.ptr() + 1, 1, PROT_READ));
}

TEST(Mprotect, BadProtIsEINVAL) {
  Mapping m = MapAnon(PageSize());
  EXPECT_ERRNO(EINVAL, mprotect(m.ptr(), PageSize(), 0x100));
}

TEST(Mprotect, UnmappedIsENOMEM) {
  Mapping m = MapAnon(PageSize());
  char* p = m.ptr();
  m.reset();
  EXPECT_ERRNO(ENOMEM, mprotect(p, PageSize(), PROT_READ));
}

TEST(Mprotect, WriteOnSharedReadOnlyFileIsEACCES) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), std::string(4096, 'x')));
  Fd f(open(d.Sub("a").c_str(), O_RDONLY));
  Mapping m(mmap(nullptr, 4096, PROT_READ, MAP_SHARED, f.get(), 0), 4096);
  ASSERT_TRUE(m.ok());
  EXPECT_ERRNO(EACCES, mprotect(m.ptr(), 4096, PROT_READ | PROT_WRITE));
}

TEST(Mremap, GrowMayMovePreservesContents) {
  size_t ps = PageSize();
  Mapping m = MapAnon(ps);
  strcpy(m.ptr(), "keep me");
  void* n = mremap(m.ptr(), ps, 16 * ps, MREMAP_MAYMOVE);
  ASSERT_NE(n, MAP_FAILED) << strerror(errno);
  m.release();
  Mapping grown(n, 16 * ps);
  EXPECT_STREQ(grown.ptr(), "keep me");
  grown.ptr()[15 * ps] = 1;
}

TEST(Mremap, ShrinkInPlace) {
  size_t ps = PageSize();
  Mapping m = MapAnon(4 * ps);
  void* n = mremap(m.ptr(), 4 * ps, ps, 0);
  EXPECT_EQ(n, (void*)m.ptr());
  unsigned char vec[4];
  EXPECT_ERRNO(ENOMEM, mincore(m.ptr(), 4 * ps, vec));
  m.reset();
}

TEST(Mremap, GrowWithoutMaymoveWhenBlockedIsENOMEM) {
  size_t ps = PageSize();
  Mapping m = MapAnon(2 * ps);
  // Keep the second page mapped separately so the first cannot grow.
  ASSERT_OK(mprotect(m.ptr() + ps, ps, PROT_READ));
  EXPECT_EQ(mremap(m.ptr(), ps, 2 * ps, 0), MAP_FAILED);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(Mremap, FixedRequiresMaymove) {
  size_t ps = PageSize();
  Mapping a = MapAnon(ps), b = MapAnon(ps);
  EXPECT_EQ(mremap(a.ptr(), ps, ps, MREMAP_FIXED, b.ptr()), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
}

TEST(Mremap, FixedMovesToTarget) {
  size_t ps = PageSize();
  Mapping a = MapAnon(ps), b = MapAnon(ps);
  strcpy(a.ptr(), "moved");
  void* r = mremap(a.ptr(), ps, ps, MREMAP_MAYMOVE | MREMAP_FIXED, b.ptr());
  ASSERT_EQ(r, (void*)b.ptr());
  a.release();
  EXPECT_STREQ(b.ptr(), "moved");
}

TEST(Mremap, UnalignedOldAddressIsEINVAL) {
  Mapping a = MapAnon(PageSize());
  EXPECT_EQ(mremap(a.ptr() + 1, 10, 20, MREMAP_MAYMOVE), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
}

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

TEST(Mremap, DontUnmapMovesPagesAndLeavesTheOldRangeEmpty) {
  size_t ps = PageSize();
  Mapping a = MapAnon(2 * ps), target = MapAnon(2 * ps);
  strcpy(a.ptr(), "first");
  strcpy(a.ptr() + ps, "second");
  // With MREMAP_FIXED: Linux 6.18 refuses DONTUNMAP without it (EINVAL),
  // which mremap(2) does not document; the sandbox takes both.
  void* n = mremap(a.ptr(), 2 * ps, 2 * ps, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, target.ptr());
  ASSERT_EQ(n, (void*)target.ptr()) << strerror(errno);
  target.release();
  Mapping moved(n, 2 * ps);
  EXPECT_STREQ(moved.ptr(), "first");
  EXPECT_STREQ(moved.ptr() + ps, "second");
  // Still mapped, now empty: private anonymous memory reads zeroes.
  EXPECT_EQ(a.ptr()[0], 0);
  EXPECT_EQ(a.ptr()[ps], 0);
  a.ptr()[0] = 7;  // and stays writable
  EXPECT_EQ(moved.ptr()[0], 'f');
}

TEST(Mremap, DontUnmapOfSharedMemoryKeepsTheOldView) {
  size_t ps = PageSize();
  char* p = static_cast<char*>(mmap(nullptr, ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  Mapping a(p, ps), target = MapAnon(ps);
  strcpy(a.ptr(), "shared");
  void* n = mremap(a.ptr(), ps, ps, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, target.ptr());
  ASSERT_EQ(n, (void*)target.ptr()) << strerror(errno);
  target.release();
  Mapping moved(n, ps);
  EXPECT_STREQ(moved.ptr(), "shared");
  EXPECT_STREQ(a.ptr(), "shared");
  strcpy(moved.ptr(), "both");
  EXPECT_STREQ(a.ptr(), "both");
}

TEST(Mremap, DontUnmapRules) {
  size_t ps = PageSize();
  Mapping a = MapAnon(2 * ps), b = MapAnon(ps);
  EXPECT_EQ(mremap(a.ptr(), ps, ps, MREMAP_DONTUNMAP), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(mremap(a.ptr(), ps, 2 * ps, MREMAP_MAYMOVE | MREMAP_DONTUNMAP), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  strcpy(a.ptr(), "to b");
  void* r = mremap(a.ptr(), ps, ps, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, b.ptr());
  ASSERT_EQ(r, (void*)b.ptr()) << strerror(errno);
  EXPECT_STREQ(b.ptr(), "to b");
  EXPECT_EQ(a.ptr()[0], 0);
}

// The sandbox has no memory protection keys; it answers as Linux does on
// a CPU without them, and key -1 is plain mprotect.
TEST(Pkey, NoKeysAndMinusOneIsMprotect) {
  long r = syscall(SYS_pkey_alloc, 0, 0);
  if (r >= 0) {
    syscall(SYS_pkey_free, r);
    GTEST_SKIP() << "this CPU has protection keys";
  }
  EXPECT_EQ(errno, EINVAL);
  EXPECT_ERRNO(EINVAL, syscall(SYS_pkey_alloc, 1, 0));
  EXPECT_ERRNO(EINVAL, syscall(SYS_pkey_free, 1));
  Mapping m = MapAnon(PageSize());
  EXPECT_OK(syscall(SYS_pkey_mprotect, m.ptr(), PageSize(), PROT_READ, -1));
  EXPECT_TRUE(SegfaultsInChild([&] { m.ptr()[0] = 1; }));
  EXPECT_ERRNO(EINVAL, syscall(SYS_pkey_mprotect, m.ptr(), PageSize(), PROT_READ, 1));
}

TEST(Madvise, DontneedZeroesPrivateAnonymous) {
  Mapping m = MapAnon(PageSize());
  memset(m.ptr(), 9, PageSize());
  ASSERT_OK(madvise(m.ptr(), PageSize(), MADV_DONTNEED));
  EXPECT_EQ(m.ptr()[0], 0);
  EXPECT_EQ(m.ptr()[PageSize() - 1], 0);
}

TEST(Madvise, DontneedKeepsSharedContents) {
  Mapping m = MapAnon(PageSize(), PROT_READ | PROT_WRITE, MAP_SHARED);
  memset(m.ptr(), 9, PageSize());
  ASSERT_OK(madvise(m.ptr(), PageSize(), MADV_DONTNEED));
  EXPECT_EQ(m.ptr()[0], 9);
}

TEST(Madvise, BadAdviceIsEINVAL) {
  Mapping m = MapAnon(PageSize());
  EXPECT_ERRNO(EINVAL, madvise(m.ptr(), PageSize(), 12345));
  EXPECT_ERRNO(EINVAL, madvise(m.ptr() + 1, PageSize(), MADV_NORMAL));
}

TEST(Madvise, UnmappedIsENOMEM) {
  Mapping m = MapAnon(PageSize());
  char* p = m.ptr();
  m.reset();
  EXPECT_ERRNO(ENOMEM, madvise(p, PageSize(), MADV_WILLNEED));
}

TEST(Mincore, ReportsTouchedPages) {
  size_t ps = PageSize();
  Mapping m = MapAnon(4 * ps);
  m.ptr()[0] = 1;
  m.ptr()[2 * ps] = 1;
  unsigned char vec[4] = {};
  ASSERT_OK(mincore(m.ptr(), 4 * ps, vec));
  EXPECT_EQ(vec[0] & 1, 1);
  EXPECT_EQ(vec[2] & 1, 1);
}

TEST(Mincore, UnalignedIsEINVAL) {
  Mapping m = MapAnon(PageSize());
  unsigned char vec[1];
  EXPECT_ERRNO(EINVAL, mincore(m.ptr() + 1, 1, vec));
}

TEST(Mincore, BadVectorIsEFAULT) {
  Mapping m = MapAnon(PageSize());
  EXPECT_ERRNO(EFAULT, mincore(m.ptr(), PageSize(), (unsigned char*)kBadPtr));
}

TEST(Msync, InvalidFlags) {
  Mapping m = MapAnon(PageSize(), PROT_READ | PROT_WRITE, MAP_SHARED);
  EXPECT_ERRNO(EINVAL, msync(m.ptr(), PageSize(), MS_SYNC | MS_ASYNC));
  EXPECT_ERRNO(EINVAL, msync(m.ptr(), PageSize(), 0x100));
  EXPECT_ERRNO(EINVAL, msync(m.ptr() + 1, PageSize(), MS_SYNC));
}

TEST(Msync, UnmappedIsENOMEM) {
  Mapping m = MapAnon(PageSize());
  char* p = m.ptr();
  m.reset();
  EXPECT_ERRNO(ENOMEM, msync(p, PageSize(), MS_SYNC));
}

TEST(Brk, QueryGrowAndShrink) {
  EXPECT_CHILD_OK([] {
    uintptr_t cur = syscall(SYS_brk, 0);
    CHILD_CHECK(cur != 0);
    uintptr_t want = cur + 64 * 1024;
    CHILD_CHECK((uintptr_t)syscall(SYS_brk, want) == want);
    // The new heap is usable and zero-filled.
    volatile char* p = (volatile char*)(want - 1);
    CHILD_CHECK(*p == 0);
    *p = 5;
    CHILD_CHECK((uintptr_t)syscall(SYS_brk, cur) == cur);
    return 0;
  });
}

TEST(Brk, FailureReturnsCurrentBreak) {
  EXPECT_CHILD_OK([] {
    uintptr_t cur = syscall(SYS_brk, 0);
    // The raw syscall reports failure by returning the unchanged break.
    CHILD_CHECK((uintptr_t)syscall(SYS_brk, 1) == cur);
    CHILD_CHECK((uintptr_t)syscall(SYS_brk, 0x7fffffffffffULL) == cur);
    return 0;
  });
}

TEST(Mlock, LockAndUnlock) {
  Mapping m = MapAnon(PageSize());
  ASSERT_OK(mlock(m.ptr(), PageSize()));
  EXPECT_OK(munlock(m.ptr(), PageSize()));
}

}  // namespace
