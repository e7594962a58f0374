// truncate(2)/ftruncate(2), fallocate(2), chmod(2)/fchmod(2)/fchmodat(2),
// chown(2)/fchown(2)/lchown(2)/fchownat(2), utimensat(2)/futimens(3),
// access(2)/faccessat(2)/faccessat2, statfs(2)/fstatfs(2).
#include <grp.h>
#include <linux/falloc.h>
#include <sys/statfs.h>
#include <sys/vfs.h>

#include "test_util.h"

namespace {

off_t SizeOf(const std::string& p) {
  struct stat st;
  if (stat(p.c_str(), &st) != 0) return -1;
  return st.st_size;
}

TEST(Truncate, ShrinkAndGrow) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "0123456789"));
  ASSERT_OK(truncate(d.Sub("a").c_str(), 4));
  std::string got;
  ReadFile(d.Sub("a"), &got);
  EXPECT_EQ(got, "0123");
  ASSERT_OK(truncate(d.Sub("a").c_str(), 8));
  ReadFile(d.Sub("a"), &got);
  EXPECT_EQ(got, std::string("0123\0\0\0\0", 8));
}

TEST(Truncate, Errors) {
  TempDir d;
  EXPECT_ERRNO(ENOENT, truncate(d.Sub("none").c_str(), 0));
  EXPECT_ERRNO(EISDIR, truncate(d.path().c_str(), 0));
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  EXPECT_ERRNO(EINVAL, truncate(d.Sub("a").c_str(), -1));
}

TEST(Ftruncate, RequiresWritableFd) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "abc"));
  Fd ro(open(d.Sub("a").c_str(), O_RDONLY));
  EXPECT_ERRNO(EINVAL, ftruncate(ro.get(), 0));
  Fd rw(open(d.Sub("a").c_str(), O_RDWR));
  EXPECT_OK(ftruncate(rw.get(), 1));
  EXPECT_EQ(SizeOf(d.Sub("a")), 1);
}

TEST(Ftruncate, DoesNotMoveOffset) {
  TempDir d;
  Fd f(open(d.Sub("a").c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_RET(10, write(f.get(), "0123456789", 10));
  ASSERT_OK(ftruncate(f.get(), 2));
  EXPECT_RET(10, lseek(f.get(), 0, SEEK_CUR));
  ASSERT_RET(1, write(f.get(), "z", 1));
  EXPECT_EQ(SizeOf(d.Sub("a")), 11);
}

TEST(Ftruncate, PipeIsEINVAL) {
  int p[2];
  ASSERT_OK(pipe(p));
  Fd r(p[0]), w(p[1]);
  EXPECT_ERRNO(EINVAL, ftruncate(w.get(), 0));
}

TEST(Fallocate, ExtendsFile) {
  TempDir d;
  Fd f(open(d.Sub("a").c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_OK(fallocate(f.get(), 0, 0, 1 << 16));
  EXPECT_EQ(SizeOf(d.Sub("a")), 1 << 16);
  struct stat st;
  fstat(f.get(), &st);
  EXPECT_GE(st.st_blocks * 512, 1 << 16);
}

TEST(Fallocate, KeepSizeDoesNotChangeSize) {
  TempDir d;
  Fd f(open(d.Sub("a").c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_OK(fallocate(f.get(), FALLOC_FL_KEEP_SIZE, 0, 1 << 16));
  EXPECT_EQ(SizeOf(d.Sub("a")), 0);
}

TEST(Fallocate, PunchHoleZeroesRange) {
  TempDir d;
  Fd f(open(d.Sub("a").c_str(), O_RDWR | O_CREAT, 0644));
  std::string data(3 * 4096, 'x');
  ASSERT_RET(data.size(), write(f.get(), data.data(), data.size()));
  int r = fallocate(f.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096);
  if (r != 0 && errno == EOPNOTSUPP) GTEST_SKIP() << "filesystem lacks hole punching";
  ASSERT_OK(r);
  char buf[4096];
  ASSERT_RET(4096, pread(f.get(), buf, 4096, 4096));
  EXPECT_EQ(std::string(buf, 4096), std::string(4096, '\0'));
  ASSERT_RET(1, pread(f.get(), buf, 1, 8192));
  EXPECT_EQ(buf[0], 'x');
  EXPECT_EQ(SizeOf(d.Sub("a")), 3 * 4096);
}

TEST(Fallocate, Errors) {
  TempDir d;
  Fd f(open(d.Sub("a").c_str(), O_RDWR | O_CREAT, 0644));
  EXPECT_ERRNO(EINVAL, fallocate(f.get(), 0, -1, 10));
  EXPECT_ERRNO(EINVAL, fallocate(f.get(), 0, 0, 0));
  EXPECT_ERRNO(EOPNOTSUPP, fallocate(f.get(), FALLOC_FL_PUNCH_HOLE, 0, 10));  // needs KEEP_SIZE
  Fd ro(open(d.Sub("a").c_str(), O_RDONLY));
  EXPECT_ERRNO(EBADF, fallocate(ro.get(), 0, 0, 10));
  int p[2];
  ASSERT_OK(pipe(p));
  Fd pr(p[0]), pw(p[1]);
  EXPECT_ERRNO(ESPIPE, fallocate(pw.get(), 0, 0, 10));
}

TEST(Chmod, ChangesPermissionBits) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  ASSERT_OK(chmod(d.Sub("a").c_str(), 0741));
  struct stat st;
  ASSERT_OK(stat(d.Sub("a").c_str(), &st));
  EXPECT_EQ(st.st_mode & 07777, 0741u);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST(Chmod, FchmodAndFchmodat) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  Fd f(open(d.Sub("a").c_str(), O_RDONLY));
  ASSERT_OK(fchmod(f.get(), 0600));
  struct stat st;
  fstat(f.get(), &st);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Fd dir(open(d.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_OK(fchmodat(dir.get(), "a", 0644, 0));
  fstat(f.get(), &st);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_ERRNO(EBADF, fchmod(-1, 0600));
}

TEST(Chmod, ChangesCtime) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  struct timespec old[2] = {{1000, 0}, {1000, 0}};
  ASSERT_OK(utimensat(AT_FDCWD, d.Sub("a").c_str(), old, 0));
  struct stat before, after;
  stat(d.Sub("a").c_str(), &before);
  SleepMs(20);
  ASSERT_OK(chmod(d.Sub("a").c_str(), 0600));
  stat(d.Sub("a").c_str(), &after);
  EXPECT_TRUE(after.st_ctim.tv_sec > before.st_ctim.tv_sec ||
              (after.st_ctim.tv_sec == before.st_ctim.tv_sec && after.st_ctim.tv_nsec > before.st_ctim.tv_nsec));
  EXPECT_EQ(after.st_mtime, 1000);
}

TEST(Chmod, NonOwnerIsEPERM) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_OK(chmod(d.path().c_str(), 0755));  // let the dropped uid reach it
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  std::string path = d.Sub("a");
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(setresuid(1000, 1000, 1000) == 0);
    CHILD_CHECK(chmod(path.c_str(), 0777) == -1 && errno == EPERM);
    return 0;
  });
}

TEST(Chmod, NonMemberClearsSetgidBit) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_OK(chmod(d.path().c_str(), 0755));  // let the dropped uid reach it
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  ASSERT_OK(chown(d.Sub("a").c_str(), 1000, 2000));
  std::string path = d.Sub("a");
  EXPECT_CHILD_OK([&] {
    gid_t none[1] = {3000};
    CHILD_CHECK(setgroups(1, none) == 0);
    CHILD_CHECK(setresgid(3000, 3000, 3000) == 0);
    CHILD_CHECK(setresuid(1000, 1000, 1000) == 0);
    CHILD_CHECK(chmod(path.c_str(), 02755) == 0);
    struct stat st;
    stat(path.c_str(), &st);
    CHILD_CHECK((st.st_mode & 07777) == 0755);
    return 0;
  });
}

TEST(Chown, RootChangesOwnerAndGroup) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  ASSERT_OK(chown(d.Sub("a").c_str(), 1234, 5678));
  struct stat st;
  stat(d.Sub("a").c_str(), &st);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  // -1 leaves a field unchanged.
  ASSERT_OK(chown(d.Sub("a").c_str(), -1, 42));
  stat(d.Sub("a").c_str(), &st);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 42u);
}

TEST(Chown, ClearsSetuidOnRegularFile) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  ASSERT_OK(chmod(d.Sub("a").c_str(), 04755));
  ASSERT_OK(chown(d.Sub("a").c_str(), 1000, -1));
  struct stat st;
  stat(d.Sub("a").c_str(), &st);
  EXPECT_EQ(st.st_mode & 04000, 0u);
}

TEST(Chown, LchownChangesLinkItself) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  ASSERT_OK(symlink("a", d.Sub("l").c_str()));
  ASSERT_OK(lchown(d.Sub("l").c_str(), 77, 77));
  struct stat l, a;
  lstat(d.Sub("l").c_str(), &l);
  stat(d.Sub("a").c_str(), &a);
  EXPECT_EQ(l.st_uid, 77u);
  EXPECT_EQ(a.st_uid, 0u);
}

TEST(Chown, FchownAndFchownat) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  Fd f(open(d.Sub("a").c_str(), O_RDONLY));
  ASSERT_OK(fchown(f.get(), 11, 12));
  struct stat st;
  fstat(f.get(), &st);
  EXPECT_EQ(st.st_uid, 11u);
  ASSERT_OK(fchownat(f.get(), "", 13, 14, AT_EMPTY_PATH));
  fstat(f.get(), &st);
  EXPECT_EQ(st.st_gid, 14u);
  EXPECT_ERRNO(EINVAL, fchownat(AT_FDCWD, d.Sub("a").c_str(), 1, 1, 0x40000000));
}

TEST(Chown, UnprivilegedToOtherUserIsEPERM) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_OK(chmod(d.path().c_str(), 0755));  // let the dropped uid reach it
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  ASSERT_OK(chown(d.Sub("a").c_str(), 1000, 1000));
  std::string path = d.Sub("a");
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(setresuid(1000, 1000, 1000) == 0);
    CHILD_CHECK(chown(path.c_str(), 1001, -1) == -1 && errno == EPERM);
    // Setting the same owner is allowed.
    CHILD_CHECK(chown(path.c_str(), 1000, -1) == 0);
    return 0;
  });
}

TEST(Utimensat, SetsExplicitTimes) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  struct timespec ts[2] = {{1000, 500}, {2000, 700}};
  ASSERT_OK(utimensat(AT_FDCWD, d.Sub("a").c_str(), ts, 0));
  struct stat st;
  stat(d.Sub("a").c_str(), &st);
  EXPECT_EQ(st.st_atim.tv_sec, 1000);
  EXPECT_EQ(st.st_atim.tv_nsec, 500);
  EXPECT_EQ(st.st_mtim.tv_sec, 2000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 700);
}

TEST(Utimensat, OmitAndNow) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  struct timespec ts[2] = {{1000, 0}, {2000, 0}};
  ASSERT_OK(utimensat(AT_FDCWD, d.Sub("a").c_str(), ts, 0));
  struct timespec ts2[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  ASSERT_OK(utimensat(AT_FDCWD, d.Sub("a").c_str(), ts2, 0));
  struct stat st;
  stat(d.Sub("a").c_str(), &st);
  EXPECT_EQ(st.st_atim.tv_sec, 1000);
  EXPECT_GT(st.st_mtim.tv_sec, 1600000000);
}

TEST(Utimensat, NullTimesMeansNow) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  struct timespec ts[2] = {{1000, 0}, {2000, 0}};
  ASSERT_OK(utimensat(AT_FDCWD, d.Sub("a").c_str(), ts, 0));
  ASSERT_OK(utimensat(AT_FDCWD, d.Sub("a").c_str(), nullptr, 0));
  struct stat st;
  stat(d.Sub("a").c_str(), &st);
  EXPECT_GT(st.st_atim.tv_sec, 1600000000);
  EXPECT_GT(st.st_mtim.tv_sec, 1600000000);
}

TEST(Utimensat, SymlinkNofollowChangesLink) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  ASSERT_OK(symlink("a", d.Sub("l").c_str()));
  struct timespec ts[2] = {{3000, 0}, {3000, 0}};
  ASSERT_OK(utimensat(AT_FDCWD, d.Sub("l").c_str(), ts, AT_SYMLINK_NOFOLLOW));
  struct stat l, a;
  lstat(d.Sub("l").c_str(), &l);
  stat(d.Sub("a").c_str(), &a);
  EXPECT_EQ(l.st_mtim.tv_sec, 3000);
  EXPECT_NE(a.st_mtim.tv_sec, 3000);
}

TEST(Utimensat, InvalidNsecIsEINVAL) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  struct timespec ts[2] = {{0, 1000000000}, {0, 0}};
  EXPECT_ERRNO(EINVAL, utimensat(AT_FDCWD, d.Sub("a").c_str(), ts, 0));
  EXPECT_ERRNO(EINVAL, utimensat(AT_FDCWD, d.Sub("a").c_str(), nullptr, 0x1000000));
}

TEST(Utimensat, FutimensOnFd) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  Fd f(open(d.Sub("a").c_str(), O_RDWR));
  struct timespec ts[2] = {{111, 0}, {222, 0}};
  ASSERT_OK(futimens(f.get(), ts));
  struct stat st;
  fstat(f.get(), &st);
  EXPECT_EQ(st.st_mtime, 222);
  EXPECT_ERRNO(EBADF, futimens(-1, ts));
}

TEST(Utimensat, UnprivilegedNonOwnerExplicitTimesIsEPERM) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_OK(chmod(d.path().c_str(), 0755));  // let the dropped uid reach it
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  ASSERT_OK(chmod(d.Sub("a").c_str(), 0666));
  std::string path = d.Sub("a");
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(setresuid(1000, 1000, 1000) == 0);
    struct timespec ts[2] = {{1, 0}, {1, 0}};
    CHILD_CHECK(utimensat(AT_FDCWD, path.c_str(), ts, 0) == -1 && errno == EPERM);
    // Setting "now" only needs write permission.
    CHILD_CHECK(utimensat(AT_FDCWD, path.c_str(), nullptr, 0) == 0);
    return 0;
  });
}

TEST(Access, ExistenceAndModes) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  ASSERT_OK(chmod(d.Sub("a").c_str(), 0644));
  EXPECT_OK(access(d.Sub("a").c_str(), F_OK));
  EXPECT_OK(access(d.Sub("a").c_str(), R_OK | W_OK));
  EXPECT_ERRNO(ENOENT, access(d.Sub("none").c_str(), F_OK));
  EXPECT_ERRNO(EINVAL, access(d.Sub("a").c_str(), 0x80));
}

TEST(Access, RootExecuteNeedsSomeXBit) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  ASSERT_OK(chmod(d.Sub("a").c_str(), 0644));
  EXPECT_ERRNO(EACCES, access(d.Sub("a").c_str(), X_OK));
  ASSERT_OK(chmod(d.Sub("a").c_str(), 0001));
  EXPECT_OK(access(d.Sub("a").c_str(), X_OK));
  EXPECT_OK(access(d.Sub("a").c_str(), R_OK | W_OK));
}

TEST(Access, UsesRealUidNotEffective) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  ASSERT_OK(chmod(d.Sub("a").c_str(), 0600));
  ASSERT_OK(chmod(d.path().c_str(), 0755));
  std::string path = d.Sub("a");
  EXPECT_CHILD_OK([&] {
    // Real uid 1000, effective root: access() checks with the real uid.
    CHILD_CHECK(setresuid(1000, 0, 0) == 0);
    CHILD_CHECK(access(path.c_str(), R_OK) == -1 && errno == EACCES);
    CHILD_CHECK(faccessat(AT_FDCWD, path.c_str(), R_OK, AT_EACCESS) == 0);
    return 0;
  });
}

TEST(Access, SearchPermissionOnPathComponent) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_OK(mkdir(d.Sub("locked").c_str(), 0700));
  ASSERT_TRUE(WriteFile(d.Sub("locked/f"), ""));
  ASSERT_OK(chmod(d.Sub("locked/f").c_str(), 0666));
  ASSERT_OK(chmod(d.path().c_str(), 0755));
  std::string path = d.Sub("locked/f");
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(setresuid(1000, 1000, 1000) == 0);
    CHILD_CHECK(access(path.c_str(), F_OK) == -1 && errno == EACCES);
    return 0;
  });
}

TEST(Statfs, ReportsSaneValues) {
  TempDir d;
  struct statfs sf;
  ASSERT_OK(statfs(d.path().c_str(), &sf));
  EXPECT_GT(sf.f_bsize, 0);
  EXPECT_GT(sf.f_blocks, 0u);
  EXPECT_LE(sf.f_bfree, sf.f_blocks);
  EXPECT_LE(sf.f_bavail, sf.f_bfree);
  EXPECT_GT(sf.f_namelen, 0);
}

TEST(Statfs, FstatfsMatchesStatfs) {
  TempDir d;
  Fd dir(open(d.path().c_str(), O_RDONLY | O_DIRECTORY));
  struct statfs a, b;
  ASSERT_OK(statfs(d.path().c_str(), &a));
  ASSERT_OK(fstatfs(dir.get(), &b));
  EXPECT_EQ(a.f_type, b.f_type);
  EXPECT_EQ(a.f_bsize, b.f_bsize);
  EXPECT_EQ(a.f_blocks, b.f_blocks);
}

TEST(Statfs, ProcIsProcfs) {
  struct statfs sf;
  ASSERT_OK(statfs("/proc", &sf));
  EXPECT_EQ(sf.f_type, 0x9fa0);  // PROC_SUPER_MAGIC
}

TEST(Statfs, Errors) {
  struct statfs sf;
  EXPECT_ERRNO(ENOENT, statfs("/nonexistent-path-xyz", &sf));
  EXPECT_ERRNO(EBADF, fstatfs(-1, &sf));
  EXPECT_ERRNO(EFAULT, statfs("/", (struct statfs*)kBadPtr));
}

}  // namespace
