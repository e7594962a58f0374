// execve(2) of set-user-ID and set-group-ID programs (execve(2),
// capabilities(7) "Transformation of capabilities during execve"), and
// personality(2)'s READ_IMPLIES_EXEC on mmap/mprotect.
//
// The program executed is a copy of this test binary: run with
// CARAPACE_EXEC_REPORT=<fd> in its environment it writes a Report of its
// credentials to that descriptor before main and exits.
#include <linux/capability.h>
#include <grp.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>

#include "test_util.h"

namespace {

struct Report {
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  uint64_t permitted, effective;
  unsigned long secure;
  int dumpable;
};

uint64_t CapSet(bool effective) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return ~0ULL;
  if (effective) return data[0].effective | (uint64_t(data[1].effective) << 32);
  return data[0].permitted | (uint64_t(data[1].permitted) << 32);
}

__attribute__((constructor)) void MaybeReport() {
  const char* fd = getenv("CARAPACE_EXEC_REPORT");
  if (fd == nullptr) return;
  Report r = {};
  getresuid(&r.ruid, &r.euid, &r.suid);
  getresgid(&r.rgid, &r.egid, &r.sgid);
  r.permitted = CapSet(false);
  r.effective = CapSet(true);
  r.secure = getauxval(AT_SECURE);
  r.dumpable = prctl(PR_GET_DUMPABLE);
  write(atoi(fd), &r, sizeof(r));
  _exit(0);
}

// CopySelf copies this binary to path with mode and owner.
bool CopySelf(const std::string& path, mode_t mode, uid_t uid, gid_t gid) {
  std::string self;
  if (!ReadFile("/proc/self/exe", &self) || !WriteFile(path, self)) return false;
  // chown clears set-ID bits, so the mode comes last.
  return chown(path.c_str(), uid, gid) == 0 && chmod(path.c_str(), mode) == 0;
}

// RunReport runs path (in a child) as uid:gid, after prepare, and returns
// what the program reported; false if it did not.
bool RunReport(const std::string& path, uid_t uid, gid_t gid, Report* out,
               const std::function<bool()>& prepare = [] { return true; }) {
  int p[2];
  if (pipe(p) != 0) return false;
  fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    if (!prepare()) _exit(2);
    if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) _exit(3);
    std::string env = "CARAPACE_EXEC_REPORT=" + std::to_string(p[1]);
    char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
    char* envp[] = {const_cast<char*>(env.c_str()), nullptr};
    execve(path.c_str(), argv, envp);
    _exit(4);
  }
  close(p[1]);
  ssize_t n = ReadFull(p[0], out, sizeof(*out));
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  return n == sizeof(*out) && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
constexpr gid_t kOtherGroup = 65533;

TEST(SetIDExec, SetuidRootGivesRootEffectiveAndFullCapabilities) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_OK(chmod(d.path().c_str(), 0755));
  std::string prog = d.Sub("suid");
  ASSERT_TRUE(CopySelf(prog, 04755, 0, 0));
  Report r;
  ASSERT_TRUE(RunReport(prog, kNobody, kNogroup, &r));
  EXPECT_EQ(r.ruid, kNobody);
  EXPECT_EQ(r.euid, 0u);
  EXPECT_EQ(r.suid, 0u);
  EXPECT_EQ(r.egid, kNogroup);
  // An effective root gets the full (bounding) set, effective too.
  EXPECT_NE(r.permitted, 0u);
  EXPECT_EQ(r.effective, r.permitted);
  EXPECT_EQ(r.permitted & (1ULL << CAP_SYS_ADMIN), 1ULL << CAP_SYS_ADMIN);
  EXPECT_EQ(r.secure, 1u);
  EXPECT_EQ(r.dumpable, 0);
}

TEST(SetIDExec, PlainExecByUserIsNotSecure) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_OK(chmod(d.path().c_str(), 0755));
  std::string prog = d.Sub("plain");
  ASSERT_TRUE(CopySelf(prog, 0755, 0, 0));
  Report r;
  ASSERT_TRUE(RunReport(prog, kNobody, kNogroup, &r));
  EXPECT_EQ(r.euid, kNobody);
  EXPECT_EQ(r.permitted, 0u);
  EXPECT_EQ(r.secure, 0u);
  EXPECT_EQ(r.dumpable, 1);
}

TEST(SetIDExec, SetgidChangesEffectiveAndSavedGroup) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_OK(chmod(d.path().c_str(), 0755));
  std::string prog = d.Sub("sgid");
  ASSERT_TRUE(CopySelf(prog, 02755, 0, kOtherGroup));
  Report r;
  ASSERT_TRUE(RunReport(prog, kNobody, kNogroup, &r));
  EXPECT_EQ(r.euid, kNobody);
  EXPECT_EQ(r.rgid, kNogroup);
  EXPECT_EQ(r.egid, kOtherGroup);
  EXPECT_EQ(r.sgid, kOtherGroup);
  EXPECT_EQ(r.permitted, 0u);
  EXPECT_EQ(r.secure, 1u);
  EXPECT_EQ(r.dumpable, 0);
}

TEST(SetIDExec, SetgidWithoutGroupExecuteIsIgnored) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_OK(chmod(d.path().c_str(), 0755));
  std::string prog = d.Sub("sgid-noexec");
  ASSERT_TRUE(CopySelf(prog, 02745, 0, kOtherGroup));
  Report r;
  ASSERT_TRUE(RunReport(prog, kNobody, kNogroup, &r));
  EXPECT_EQ(r.egid, kNogroup);
  EXPECT_EQ(r.secure, 0u);
}

TEST(SetIDExec, RootRunningSetuidUserProgramDropsEffectiveCapabilities) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_OK(chmod(d.path().c_str(), 0755));
  std::string prog = d.Sub("suid-user");
  ASSERT_TRUE(CopySelf(prog, 04755, kNobody, kNogroup));
  Report r;
  ASSERT_TRUE(RunReport(prog, 0, 0, &r));
  EXPECT_EQ(r.ruid, 0u);
  EXPECT_EQ(r.euid, kNobody);
  EXPECT_EQ(r.suid, kNobody);
  // A real root keeps the permitted set, but with a non-root effective
  // UID none of it is effective.
  EXPECT_NE(r.permitted, 0u);
  EXPECT_EQ(r.effective, 0u);
  EXPECT_EQ(r.secure, 1u);
}

TEST(SetIDExec, NoNewPrivsIgnoresSetID) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_OK(chmod(d.path().c_str(), 0755));
  std::string prog = d.Sub("suid-nnp");
  ASSERT_TRUE(CopySelf(prog, 06755, 0, 0));
  Report r;
  ASSERT_TRUE(RunReport(prog, kNobody, kNogroup, &r,
                        [] { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0; }));
  EXPECT_EQ(r.euid, kNobody);
  EXPECT_EQ(r.egid, kNogroup);
  EXPECT_EQ(r.permitted, 0u);
  EXPECT_EQ(r.secure, 0u);
}

TEST(SetIDExec, NosuidMountIgnoresSetID) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  std::string mp = d.path();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(unshare(CLONE_NEWNS) == 0);
    CHILD_CHECK(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
    CHILD_CHECK(mount("none", mp.c_str(), "tmpfs", MS_NOSUID, "mode=0755") == 0);
    std::string prog = mp + "/suid";
    CHILD_CHECK(CopySelf(prog, 04755, 0, 0));
    Report r;
    CHILD_CHECK(RunReport(prog, kNobody, kNogroup, &r));
    CHILD_CHECK(r.euid == kNobody && r.permitted == 0 && r.secure == 0);
    // The same file elsewhere, without nosuid, is honoured.
    CHILD_CHECK(mount(nullptr, mp.c_str(), nullptr, MS_REMOUNT, "mode=0755") == 0);
    CHILD_CHECK(RunReport(prog, kNobody, kNogroup, &r));
    CHILD_CHECK(r.euid == 0 && r.secure == 1);
    // The programs that ran from it hold nothing on it any more.
    CHILD_CHECK(umount2(mp.c_str(), 0) == 0);
    return 0;
  });
}

TEST(SetIDExec, ScriptSetIDBitsAreIgnored) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_OK(chmod(d.path().c_str(), 0755));
  std::string interp = d.Sub("interp");
  ASSERT_TRUE(CopySelf(interp, 0755, 0, 0));
  std::string script = d.Sub("script");
  ASSERT_TRUE(WriteFile(script, "#!" + interp + "\n"));
  ASSERT_OK(chmod(script.c_str(), 04755));
  Report r;
  ASSERT_TRUE(RunReport(script, kNobody, kNogroup, &r));
  EXPECT_EQ(r.euid, kNobody);
  EXPECT_EQ(r.secure, 0u);
}

// personality(2) READ_IMPLIES_EXEC: readable mappings become executable.
TEST(ReadImpliesExec, MmapAndMprotectAddExec) {
  EXPECT_CHILD_OK([] {
    int old = personality(0xffffffff);
    CHILD_CHECK(old != -1);
    CHILD_CHECK(personality(old | READ_IMPLIES_EXEC) != -1);
    size_t len = PageSize();
    void* a = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(a != MAP_FAILED);
    void* b = mmap(nullptr, len, PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(b != MAP_FAILED);
    void* c = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(c != MAP_FAILED);
    CHILD_CHECK(mprotect(c, len, PROT_READ) == 0);
    auto perms = [](void* addr) {
      std::string maps;
      ReadFile("/proc/self/maps", &maps);
      char want[32];
      snprintf(want, sizeof(want), "%lx-", reinterpret_cast<unsigned long>(addr));
      size_t at = maps.find(std::string("\n") + want);
      if (at == std::string::npos && maps.rfind(want, 0) == 0) at = 0; else if (at != std::string::npos) at++;
      if (at == std::string::npos) return std::string("?");
      size_t sp = maps.find(' ', at);
      return maps.substr(sp + 1, 4);
    };
    CHILD_CHECK(perms(a) == "rwxp");
    CHILD_CHECK(perms(b) == "-w-p");  // PROT_WRITE alone gets no exec
    CHILD_CHECK(perms(c) == "r-xp");
    // Without it, PROT_READ is only read.
    CHILD_CHECK(personality(old) != -1);
    void* e = mmap(nullptr, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(e != MAP_FAILED && perms(e) == "r--p");
    return 0;
  });
}

}  // namespace
