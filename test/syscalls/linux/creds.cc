// getuid(2)/setuid(2) family, setresuid(2), getgroups(2)/setgroups(2),
// umask(2). Credential changes happen in forked children.
#include <grp.h>
#include <sys/fsuid.h>

#include "test_util.h"

namespace {

TEST(Creds, GettersAgree) {
  uid_t r, e, s;
  ASSERT_OK(getresuid(&r, &e, &s));
  EXPECT_EQ(r, getuid());
  EXPECT_EQ(e, geteuid());
  gid_t gr, ge, gs;
  ASSERT_OK(getresgid(&gr, &ge, &gs));
  EXPECT_EQ(gr, getgid());
  EXPECT_EQ(ge, getegid());
}

TEST(Creds, GetresuidBadPointerIsEFAULT) {
  uid_t r, e;
  EXPECT_ERRNO(EFAULT, syscall(SYS_getresuid, &r, &e, kBadPtr));
}

TEST(Creds, RootSetuidDropsAllIds) {
  SKIP_IF_NOT_ROOT();
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(setuid(65534) == 0);
    uid_t r, e, s;
    getresuid(&r, &e, &s);
    CHILD_CHECK(r == 65534 && e == 65534 && s == 65534);
    // Privilege is gone for good.
    CHILD_CHECK(setuid(0) == -1 && errno == EPERM);
    return 0;
  });
}

TEST(Creds, SeteuidCanBeRegained) {
  SKIP_IF_NOT_ROOT();
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(seteuid(1000) == 0);
    CHILD_CHECK(geteuid() == 1000 && getuid() == 0);
    CHILD_CHECK(seteuid(0) == 0);
    CHILD_CHECK(geteuid() == 0);
    return 0;
  });
}

TEST(Creds, SetresuidPartialUpdate) {
  SKIP_IF_NOT_ROOT();
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(setresuid(-1, 2000, -1) == 0);
    uid_t r, e, s;
    getresuid(&r, &e, &s);
    CHILD_CHECK(r == 0 && e == 2000 && s == 0);
    // An unprivileged caller may switch among its real/effective/saved ids.
    CHILD_CHECK(setresuid(2000, 0, -1) == 0);
    getresuid(&r, &e, &s);
    CHILD_CHECK(r == 2000 && e == 0);
    return 0;
  });
}

TEST(Creds, UnprivilegedSetuidToOtherIsEPERM) {
  SKIP_IF_NOT_ROOT();
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(setresuid(1000, 1000, 1000) == 0);
    CHILD_CHECK(setuid(1001) == -1 && errno == EPERM);
    CHILD_CHECK(setreuid(1001, -1) == -1 && errno == EPERM);
    CHILD_CHECK(setuid(1000) == 0);
    return 0;
  });
}

TEST(Creds, SetgidFamily) {
  SKIP_IF_NOT_ROOT();
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(setresgid(10, 20, 30) == 0);
    gid_t r, e, s;
    getresgid(&r, &e, &s);
    CHILD_CHECK(r == 10 && e == 20 && s == 30);
    CHILD_CHECK(setgid(40) == 0);
    getresgid(&r, &e, &s);
    CHILD_CHECK(r == 40 && e == 40 && s == 40);
    CHILD_CHECK(setegid(50) == 0 && getegid() == 50);
    return 0;
  });
}

TEST(Creds, InvalidIdIsEINVAL) {
  SKIP_IF_NOT_ROOT();
  EXPECT_CHILD_OK([] {
    // (uid_t)-1 means "unchanged" to setresuid but is not a valid setuid id.
    CHILD_CHECK(setuid((uid_t)-1) == -1 && errno == EINVAL);
    return 0;
  });
}

TEST(Creds, FileAccessFollowsEffectiveUid) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("secret"), "x"));
  ASSERT_OK(chmod(d.Sub("secret").c_str(), 0600));
  ASSERT_OK(chmod(d.path().c_str(), 0755));
  std::string path = d.Sub("secret");
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(setresuid(1000, 1000, 1000) == 0);
    CHILD_CHECK(open(path.c_str(), O_RDONLY) == -1 && errno == EACCES);
    return 0;
  });
}

TEST(Creds, SetfsuidReturnsPrevious) {
  SKIP_IF_NOT_ROOT();
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(setfsuid(1234) == 0);
    CHILD_CHECK(setfsuid(-1) == 1234);
    return 0;
  });
}

TEST(Groups, GetgroupsCountQuery) {
  int n = getgroups(0, nullptr);
  ASSERT_OK(n);
  std::vector<gid_t> g(n + 1);
  EXPECT_RET(n, getgroups(n + 1, g.data()));
  EXPECT_ERRNO(EINVAL, getgroups(-1, g.data()));
}

TEST(Groups, TooSmallBufferIsEINVAL) {
  SKIP_IF_NOT_ROOT();
  EXPECT_CHILD_OK([] {
    gid_t set[3] = {100, 200, 300};
    CHILD_CHECK(setgroups(3, set) == 0);
    gid_t out[2];
    CHILD_CHECK(getgroups(2, out) == -1 && errno == EINVAL);
    return 0;
  });
}

TEST(Groups, SetgroupsRoundTrip) {
  SKIP_IF_NOT_ROOT();
  EXPECT_CHILD_OK([] {
    gid_t set[3] = {100, 200, 300};
    CHILD_CHECK(setgroups(3, set) == 0);
    gid_t out[8];
    CHILD_CHECK(getgroups(8, out) == 3);
    CHILD_CHECK(out[0] == 100 && out[1] == 200 && out[2] == 300);
    CHILD_CHECK(setgroups(0, nullptr) == 0);
    CHILD_CHECK(getgroups(0, nullptr) == 0);
    return 0;
  });
}

TEST(Groups, UnprivilegedSetgroupsIsEPERM) {
  SKIP_IF_NOT_ROOT();
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(setresuid(1000, 1000, 1000) == 0);
    gid_t g = 5;
    CHILD_CHECK(setgroups(1, &g) == -1 && errno == EPERM);
    return 0;
  });
}

TEST(Umask, ReturnsPreviousAndMasksCreation) {
  TempDir d;
  std::string path = d.Sub("f"), dir = d.Sub("dir");
  EXPECT_CHILD_OK([&] {
    umask(022);
    CHILD_CHECK(umask(077) == 022);
    int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0666);
    CHILD_CHECK(fd >= 0);
    struct stat st;
    fstat(fd, &st);
    CHILD_CHECK((st.st_mode & 0777) == 0600);
    CHILD_CHECK(mkdir(dir.c_str(), 0777) == 0);
    stat(dir.c_str(), &st);
    CHILD_CHECK((st.st_mode & 0777) == 0700);
    return 0;
  });
}

TEST(Umask, OnlyPermissionBitsKept) {
  EXPECT_CHILD_OK([] {
    umask(07777 | 0170000);
    CHILD_CHECK(umask(0) == 0777);
    return 0;
  });
}

TEST(Umask, ReportedInProcStatus) {
  EXPECT_CHILD_OK([] {
    umask(027);
    std::string s;
    CHILD_CHECK(ReadFile("/proc/self/status", &s));
    CHILD_CHECK(s.find("Umask:\t0027") != std::string::npos);
    return 0;
  });
}

}  // namespace
