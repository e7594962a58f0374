// mount(2), umount2(2), pivot_root(2), chroot(2). Each test runs in a
// forked child that first enters a private mount namespace, so nothing
// leaks to the host even if the test fails half-way.
#include <sched.h>
#include <sys/mount.h>
#include <sys/statfs.h>

#include "test_util.h"

namespace {

// Enters a new mount namespace with no propagation back to the host.
bool PrivateMountNamespace() {
  return unshare(CLONE_NEWNS) == 0 && mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
}

constexpr long kTmpfsMagic = 0x01021994;

TEST(Mount, TmpfsMountAndUnmount) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  std::string mp = d.path();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(PrivateMountNamespace());
    CHILD_CHECK(mount("none", mp.c_str(), "tmpfs", 0, "size=1m,mode=0755") == 0);
    struct statfs sf;
    CHILD_CHECK(statfs(mp.c_str(), &sf) == 0 && sf.f_type == kTmpfsMagic);
    CHILD_CHECK(WriteFile(mp + "/inside", "x"));
    CHILD_CHECK(umount2(mp.c_str(), 0) == 0);
    CHILD_CHECK(access((mp + "/inside").c_str(), F_OK) == -1 && errno == ENOENT);
    return 0;
  });
}

TEST(Mount, BindMountShowsSameFiles) {
  SKIP_IF_NOT_ROOT();
  TempDir src, dst;
  ASSERT_TRUE(WriteFile(src.Sub("f"), "bound"));
  std::string s = src.path(), t = dst.path();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(PrivateMountNamespace());
    CHILD_CHECK(mount(s.c_str(), t.c_str(), nullptr, MS_BIND, nullptr) == 0);
    std::string got;
    CHILD_CHECK(ReadFile(t + "/f", &got) && got == "bound");
    return 0;
  });
}

TEST(Mount, ReadOnlyRemountRejectsWrites) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  std::string mp = d.path();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(PrivateMountNamespace());
    CHILD_CHECK(mount("none", mp.c_str(), "tmpfs", 0, nullptr) == 0);
    CHILD_CHECK(mount(nullptr, mp.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0);
    CHILD_CHECK(open((mp + "/f").c_str(), O_CREAT | O_WRONLY, 0644) == -1 && errno == EROFS);
    return 0;
  });
}

// mountinfo shows a bind mount's root (the source directory within its
// filesystem) and its per-mount flags; /proc/self/mounts the flags too.
TEST(Mount, MountinfoShowsBindRootAndFlags) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  std::string src = d.Sub("src"), sub = d.Sub("src/sub"), dst = d.Sub("dst");
  ASSERT_OK(mkdir(src.c_str(), 0755));
  ASSERT_OK(mkdir(sub.c_str(), 0755));
  ASSERT_OK(mkdir(dst.c_str(), 0755));
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(PrivateMountNamespace());
    CHILD_CHECK(mount(sub.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) == 0);
    CHILD_CHECK(mount(nullptr, dst.c_str(), nullptr,
                      MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == 0);
    std::string info;
    CHILD_CHECK(ReadFile("/proc/self/mountinfo", &info));
    bool found = false;
    size_t pos = 0;
    while (pos < info.size()) {
      size_t end = info.find('\n', pos);
      if (end == std::string::npos) end = info.size();
      std::string line = info.substr(pos, end - pos);
      pos = end + 1;
      // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ...
      std::vector<std::string> f;
      size_t i = 0;
      while (f.size() < 6 && i < line.size()) {
        size_t j = line.find(' ', i);
        if (j == std::string::npos) j = line.size();
        f.push_back(line.substr(i, j - i));
        i = j + 1;
      }
      if (f.size() < 6 || f[4] != dst) continue;
      found = true;
      const std::string tail = "/src/sub";
      CHILD_CHECK(f[3].size() >= tail.size() && f[3].compare(f[3].size() - tail.size(), tail.size(), tail) == 0);
      CHILD_CHECK(f[5].rfind("ro,", 0) == 0);
      for (const char* o : {",nosuid", ",nodev", ",noexec"}) CHILD_CHECK(f[5].find(o) != std::string::npos);
    }
    CHILD_CHECK(found);
    std::string mounts;
    CHILD_CHECK(ReadFile("/proc/self/mounts", &mounts));
    size_t at = mounts.find(" " + dst + " ");
    CHILD_CHECK(at != std::string::npos);
    std::string line = mounts.substr(at, mounts.find('\n', at) - at);
    CHILD_CHECK(line.find(" ro,nosuid,nodev,noexec") != std::string::npos);
    return 0;
  });
}

// A file on a noexec mount cannot be mapped executable (mmap(2): EPERM),
// nor made executable later (mprotect(2): EACCES).
TEST(Mount, NoexecRefusesExecutableMappings) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  std::string mp = d.path();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(PrivateMountNamespace());
    CHILD_CHECK(mount("none", mp.c_str(), "tmpfs", MS_NOEXEC, "mode=0755") == 0);
    CHILD_CHECK(WriteFile(mp + "/f", std::string(4096, 'x')));
    Fd f(open((mp + "/f").c_str(), O_RDONLY));
    CHILD_CHECK(f.valid());
    CHILD_CHECK(mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, f.get(), 0) == MAP_FAILED && errno == EPERM);
    void* m = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, f.get(), 0);
    CHILD_CHECK(m != MAP_FAILED);
    CHILD_CHECK(mprotect(m, 4096, PROT_READ | PROT_EXEC) == -1 && errno == EACCES);
    return 0;
  });
}

// execve(2) of a program, or a script, on a noexec mount is EACCES, and so
// is execveat(2) of a descriptor opened there.
TEST(Mount, NoexecRefusesExecve) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  std::string mp = d.path();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(PrivateMountNamespace());
    CHILD_CHECK(mount("none", mp.c_str(), "tmpfs", MS_NOEXEC, "mode=0755") == 0);
    std::string script = mp + "/s";
    CHILD_CHECK(WriteFile(script, "#!/bin/sh\nexit 3\n"));  // ran: the test fails
    CHILD_CHECK(chmod(script.c_str(), 0755) == 0);
    char* argv[] = {const_cast<char*>(script.c_str()), nullptr};
    char* envp[] = {nullptr};
    CHILD_CHECK(execve(script.c_str(), argv, envp) == -1 && errno == EACCES);
    int fd = open(script.c_str(), O_RDONLY);
    CHILD_CHECK(fd >= 0);
    CHILD_CHECK(syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH) == -1 && errno == EACCES);
    close(fd);
    return 0;
  });
}

TEST(Mount, Errors) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  std::string mp = d.path();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(PrivateMountNamespace());
    CHILD_CHECK(mount("none", mp.c_str(), "nosuchfs", 0, nullptr) == -1 && errno == ENODEV);
    CHILD_CHECK(mount("none", (mp + "/missing").c_str(), "tmpfs", 0, nullptr) == -1 && errno == ENOENT);
    CHILD_CHECK(umount2(mp.c_str(), 0) == -1 && errno == EINVAL);  // not a mount point
    CHILD_CHECK(umount2(mp.c_str(), 0x80000000) == -1 && errno == EINVAL);
    return 0;
  });
}

TEST(Mount, BusyMountNeedsDetach) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  std::string mp = d.path();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(PrivateMountNamespace());
    CHILD_CHECK(mount("none", mp.c_str(), "tmpfs", 0, nullptr) == 0);
    CHILD_CHECK(chdir(mp.c_str()) == 0);
    CHILD_CHECK(umount2(mp.c_str(), 0) == -1 && errno == EBUSY);
    CHILD_CHECK(umount2(mp.c_str(), MNT_DETACH) == 0);
    return 0;
  });
}

TEST(Mount, UnprivilegedIsEPERM) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  std::string mp = d.path();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(setresuid(1000, 1000, 1000) == 0);
    CHILD_CHECK(mount("none", mp.c_str(), "tmpfs", 0, nullptr) == -1 && errno == EPERM);
    CHILD_CHECK(umount2("/", 0) == -1 && errno == EPERM);
    return 0;
  });
}

TEST(Mount, NamespaceIsolation) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  std::string mp = d.path();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(PrivateMountNamespace());
    CHILD_CHECK(mount("none", mp.c_str(), "tmpfs", 0, nullptr) == 0);
    CHILD_CHECK(WriteFile(mp + "/only-in-ns", "x"));
    return 0;
  });
  // The host namespace never saw the tmpfs.
  EXPECT_ERRNO(ENOENT, access(d.Sub("only-in-ns").c_str(), F_OK));
}

TEST(Chroot, ChangesRootForPathLookup) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("marker"), "in-root"));
  std::string root = d.path();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(chroot(root.c_str()) == 0);
    CHILD_CHECK(chdir("/") == 0);
    std::string got;
    CHILD_CHECK(ReadFile("/marker", &got) && got == "in-root");
    // ".." at the new root stays at the root.
    CHILD_CHECK(ReadFile("/../../marker", &got) && got == "in-root");
    return 0;
  });
}

TEST(Chroot, Errors) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("f"), ""));
  EXPECT_ERRNO(ENOTDIR, chroot(d.Sub("f").c_str()));
  EXPECT_ERRNO(ENOENT, chroot(d.Sub("none").c_str()));
  std::string path = d.path();
  EXPECT_CHILD_OK([&] {
    if (geteuid() == 0) CHILD_CHECK(setresuid(1000, 1000, 1000) == 0);
    CHILD_CHECK(chroot("/") == -1 && errno == EPERM);
    return 0;
  });
}

TEST(PivotRoot, SwapsRootInNewNamespace) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  std::string base = d.path();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(PrivateMountNamespace());
    // new_root must be a mount point: make it a tmpfs.
    CHILD_CHECK(mount("none", base.c_str(), "tmpfs", 0, nullptr) == 0);
    CHILD_CHECK(mkdir((base + "/old").c_str(), 0755) == 0);
    CHILD_CHECK(WriteFile(base + "/newroot-marker", "new"));
    CHILD_CHECK(syscall(SYS_pivot_root, base.c_str(), (base + "/old").c_str()) == 0);
    CHILD_CHECK(chdir("/") == 0);
    std::string got;
    CHILD_CHECK(ReadFile("/newroot-marker", &got) && got == "new");
    // The old root is reachable under /old until detached.
    CHILD_CHECK(access("/old/proc", F_OK) == 0);
    CHILD_CHECK(umount2("/old", MNT_DETACH) == 0);
    return 0;
  });
}

TEST(PivotRoot, NewRootOnCurrentRootMountIsEBUSY) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  std::string base = d.path();
  struct statfs here, root;
  ASSERT_OK(statfs(base.c_str(), &here));
  ASSERT_OK(statfs("/", &root));
  if (memcmp(&here.f_fsid, &root.f_fsid, sizeof(here.f_fsid)) != 0)
    GTEST_SKIP() << "temp dir is not on the root mount";
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(PrivateMountNamespace());
    CHILD_CHECK(mkdir((base + "/old").c_str(), 0755) == 0);
    CHILD_CHECK(syscall(SYS_pivot_root, base.c_str(), (base + "/old").c_str()) == -1 && errno == EBUSY);
    return 0;
  });
}

TEST(PivotRoot, PutOldOutsideNewRootIsEINVAL) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  std::string base = d.path();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(PrivateMountNamespace());
    CHILD_CHECK(mkdir((base + "/new").c_str(), 0755) == 0);
    CHILD_CHECK(mkdir((base + "/elsewhere").c_str(), 0755) == 0);
    CHILD_CHECK(mount("none", (base + "/new").c_str(), "tmpfs", 0, nullptr) == 0);
    CHILD_CHECK(mount("none", (base + "/elsewhere").c_str(), "tmpfs", 0, nullptr) == 0);
    CHILD_CHECK(syscall(SYS_pivot_root, (base + "/new").c_str(), (base + "/elsewhere").c_str()) == -1 &&
                errno == EINVAL);
    return 0;
  });
}

}  // namespace
