// The vDSO (vdso(7)): AT_SYSINFO_EHDR, the [vdso] and [vvar] mappings,
// its exported functions (found as a dynamic linker or the Go runtime
// finds them: through the ELF dynamic section, hash table and symbol
// versions), and their agreement with the real syscalls.
#include <elf.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/time.h>

#include <map>
#include <atomic>
#include <sstream>
#include <thread>
#include <vector>

#include "test_util.h"

namespace {

uintptr_t VdsoBase() { return static_cast<uintptr_t>(getauxval(AT_SYSINFO_EHDR)); }

// A mapping of /proc/self/maps.
struct MapsEntry {
  uintptr_t start, end;
  std::string perms, name;
};

std::vector<MapsEntry> ReadMaps() {
  std::string text;
  std::vector<MapsEntry> out;
  if (!ReadFile("/proc/self/maps", &text)) return out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    MapsEntry e;
    char perms[8] = {};
    int name_at = 0;
    unsigned long s, en;
    if (sscanf(line.c_str(), "%lx-%lx %7s %*s %*s %*s%n", &s, &en, perms, &name_at) < 3) continue;
    e.start = s;
    e.end = en;
    e.perms = perms;
    size_t p = line.find_first_not_of(' ', name_at);
    e.name = p == std::string::npos ? "" : line.substr(p);
    out.push_back(e);
  }
  return out;
}

const MapsEntry* FindNamed(const std::vector<MapsEntry>& maps, const std::string& name) {
  for (const auto& e : maps)
    if (e.name == name) return &e;
  return nullptr;
}

// VdsoImage looks symbols up in a vDSO image mapped at base, by the SysV
// hash table's symbol count (or a scan bounded by the string table) and
// version "LINUX_2.6".
class VdsoImage {
 public:
  explicit VdsoImage(uintptr_t base) : base_(base) {
    auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) return;
    auto* ph = reinterpret_cast<const Elf64_Phdr*>(base + eh->e_phoff);
    const Elf64_Dyn* dyn = nullptr;
    bool have_load = false;
    for (int i = 0; i < eh->e_phnum; i++) {
      if (ph[i].p_type == PT_LOAD && !have_load) {
        bias_ = base + ph[i].p_offset - ph[i].p_vaddr;
        have_load = true;
      } else if (ph[i].p_type == PT_DYNAMIC) {
        dyn = reinterpret_cast<const Elf64_Dyn*>(base + ph[i].p_offset);
      }
    }
    if (!have_load || dyn == nullptr) return;
    for (; dyn->d_tag != DT_NULL; dyn++) {
      uintptr_t p = bias_ + dyn->d_un.d_ptr;
      switch (dyn->d_tag) {
        case DT_SYMTAB: symtab_ = reinterpret_cast<const Elf64_Sym*>(p); break;
        case DT_STRTAB: strtab_ = reinterpret_cast<const char*>(p); break;
        case DT_HASH: hash_ = reinterpret_cast<const Elf32_Word*>(p); break;
        case DT_GNU_HASH: has_gnu_hash_ = true; break;
        case DT_VERSYM: versym_ = reinterpret_cast<const Elf64_Half*>(p); break;
        case DT_VERDEF: verdef_ = reinterpret_cast<const Elf64_Verdef*>(p); break;
      }
    }
  }

  bool valid() const { return symtab_ && strtab_ && hash_; }
  bool has_gnu_hash() const { return has_gnu_hash_; }

  // Lookup returns the address of name@version, or 0.
  void* Lookup(const char* name, const char* version) const {
    if (!valid()) return nullptr;
    Elf32_Word nsyms = hash_[1];  // nchain
    for (Elf32_Word i = 1; i < nsyms; i++) {
      const Elf64_Sym& s = symtab_[i];
      if (s.st_shndx == SHN_UNDEF || strcmp(strtab_ + s.st_name, name) != 0) continue;
      if (version != nullptr && !HasVersion(i, version)) continue;
      return reinterpret_cast<void*>(bias_ + s.st_value);
    }
    return nullptr;
  }

 private:
  bool HasVersion(Elf32_Word sym, const char* version) const {
    if (versym_ == nullptr || verdef_ == nullptr) return false;
    Elf64_Half want = versym_[sym] & 0x7fff;
    const Elf64_Verdef* d = verdef_;
    for (;;) {
      if (d->vd_ndx == want && !(d->vd_flags & VER_FLG_BASE)) {
        auto* aux = reinterpret_cast<const Elf64_Verdaux*>(reinterpret_cast<const char*>(d) + d->vd_aux);
        return strcmp(strtab_ + aux->vda_name, version) == 0;
      }
      if (d->vd_next == 0) return false;
      d = reinterpret_cast<const Elf64_Verdef*>(reinterpret_cast<const char*>(d) + d->vd_next);
    }
  }

  uintptr_t base_;
  uintptr_t bias_ = 0;
  const Elf64_Sym* symtab_ = nullptr;
  const char* strtab_ = nullptr;
  const Elf32_Word* hash_ = nullptr;
  bool has_gnu_hash_ = false;
  const Elf64_Half* versym_ = nullptr;
  const Elf64_Verdef* verdef_ = nullptr;
};

using ClockGettimeFn = int (*)(clockid_t, struct timespec*);
using GettimeofdayFn = int (*)(struct timeval*, void*);
using TimeFn = time_t (*)(time_t*);
using ClockGetresFn = int (*)(clockid_t, struct timespec*);
using GetcpuFn = int (*)(unsigned*, unsigned*, void*);

int64_t TsNs(const struct timespec& ts) { return ts.tv_sec * 1000000000LL + ts.tv_nsec; }

int64_t SyscallNs(clockid_t clk) {
  struct timespec ts;
  syscall(SYS_clock_gettime, clk, &ts);
  return TsNs(ts);
}

TEST(Vdso, AuxvPointsAtAnELFImage) {
  uintptr_t base = VdsoBase();
  ASSERT_NE(base, 0u) << "no AT_SYSINFO_EHDR";
  EXPECT_EQ(base % 4096, 0u);
  auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
  EXPECT_EQ(memcmp(eh->e_ident, ELFMAG, SELFMAG), 0);
  EXPECT_EQ(eh->e_type, ET_DYN);
  EXPECT_EQ(eh->e_machine, EM_X86_64);
}

TEST(Vdso, MapsNameVdsoAndVvar) {
  auto maps = ReadMaps();
  const MapsEntry* vdso = FindNamed(maps, "[vdso]");
  const MapsEntry* vvar = FindNamed(maps, "[vvar]");
  ASSERT_NE(vdso, nullptr) << "no [vdso] in /proc/self/maps";
  ASSERT_NE(vvar, nullptr) << "no [vvar] in /proc/self/maps";
  EXPECT_EQ(vdso->start, VdsoBase());
  EXPECT_EQ(vdso->perms, "r-xp");
  EXPECT_EQ(vvar->perms.substr(0, 3), "r--");
  // The data sits just below the code (Linux may put more data mappings
  // between them, within a few pages).
  EXPECT_LT(vvar->end, vdso->start + 1);
  EXPECT_LE(vdso->start - vvar->end, 16u * 4096);
}

TEST(Vdso, VvarIsNotWritable) {
  const MapsEntry* vvar = FindNamed(ReadMaps(), "[vvar]");
  ASSERT_NE(vvar, nullptr);
  EXPECT_ERRNO(EACCES, mprotect(reinterpret_cast<void*>(vvar->start), 4096, PROT_READ | PROT_WRITE));
}

TEST(Vdso, ExportsVersionedSymbols) {
  VdsoImage img(VdsoBase());
  ASSERT_TRUE(img.valid()) << "no dynamic symbol table or DT_HASH";
  EXPECT_TRUE(img.has_gnu_hash());
  for (const char* name : {"__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time",
                           "__vdso_getcpu", "clock_gettime", "gettimeofday", "time", "getcpu"}) {
    EXPECT_NE(img.Lookup(name, "LINUX_2.6"), nullptr) << name;
  }
  EXPECT_NE(img.Lookup("__vdso_clock_getres", "LINUX_2.6"), nullptr);
  EXPECT_EQ(img.Lookup("__vdso_clock_gettime", "LINUX_2.5"), nullptr);
}

// CLOCK_MONOTONIC through glibc (the vDSO) and through the real syscall,
// interleaved, never goes back.
TEST(Vdso, MonotonicMixedWithSyscallNeverGoesBack) {
  int64_t prev = 0;
  for (int i = 0; i < 1000000; i++) {
    int64_t now = (i % 16 == 0) ? SyscallNs(CLOCK_MONOTONIC) : NowNs(CLOCK_MONOTONIC);
    ASSERT_GE(now, prev) << "iteration " << i << (i % 16 == 0 ? " (syscall)" : " (vDSO)");
    prev = now;
  }
}

// The same from several threads at once, each checking its own sequence
// and against the latest value any thread published before its read.
TEST(Vdso, MonotonicAcrossThreads) {
  std::atomic<int64_t> published{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&, t] {
      int64_t prev = 0;
      for (int i = 0; i < 100000 && !failed; i++) {
        int64_t floor = published.load();
        int64_t now = ((i + t) % 8 == 0) ? SyscallNs(CLOCK_MONOTONIC) : NowNs(CLOCK_MONOTONIC);
        if (now < prev || now < floor) failed = true;
        prev = now;
        int64_t cur = published.load();
        while (cur < now && !published.compare_exchange_weak(cur, now)) {
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_FALSE(failed);
}

TEST(Vdso, GettimeofdayAndTimeAgreeWithRealtime) {
  for (int i = 0; i < 1000; i++) {
    struct timespec before, after;
    struct timeval tv;
    ASSERT_OK(clock_gettime(CLOCK_REALTIME, &before));
    ASSERT_OK(gettimeofday(&tv, nullptr));
    time_t t = time(nullptr);
    ASSERT_OK(clock_gettime(CLOCK_REALTIME, &after));
    int64_t tv_ns = tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL;
    ASSERT_GE(tv_ns, TsNs(before) / 1000 * 1000);
    ASSERT_LE(tv_ns, TsNs(after));
    ASSERT_LT(tv.tv_usec, 1000000);
    ASSERT_GE(t, before.tv_sec);
    ASSERT_LE(t, after.tv_sec);
  }
}

// The vDSO's functions called directly agree with the syscalls.
TEST(Vdso, FunctionsAgreeWithSyscalls) {
  VdsoImage img(VdsoBase());
  ASSERT_TRUE(img.valid());
  auto cg = reinterpret_cast<ClockGettimeFn>(img.Lookup("__vdso_clock_gettime", "LINUX_2.6"));
  auto gtod = reinterpret_cast<GettimeofdayFn>(img.Lookup("__vdso_gettimeofday", "LINUX_2.6"));
  auto tm = reinterpret_cast<TimeFn>(img.Lookup("__vdso_time", "LINUX_2.6"));
  auto res = reinterpret_cast<ClockGetresFn>(img.Lookup("__vdso_clock_getres", "LINUX_2.6"));
  auto gc = reinterpret_cast<GetcpuFn>(img.Lookup("__vdso_getcpu", "LINUX_2.6"));
  ASSERT_TRUE(cg && gtod && tm && res && gc);

  for (clockid_t c : {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME}) {
    SCOPED_TRACE(c);
    int64_t before = SyscallNs(c);
    struct timespec ts;
    ASSERT_EQ(cg(c, &ts), 0);
    int64_t after = SyscallNs(c);
    EXPECT_GE(TsNs(ts), before);
    EXPECT_LE(TsNs(ts), after);
    struct timespec r1, r2;
    ASSERT_EQ(res(c, &r1), 0);
    ASSERT_OK(syscall(SYS_clock_getres, c, &r2));
    EXPECT_EQ(TsNs(r1), TsNs(r2));
  }
  // Coarse clocks: never ahead of the fine ones, and behind them by a few
  // ticks at most (a tickless host kernel may skip ticks).
  for (auto [coarse, fine] : {std::pair{CLOCK_REALTIME_COARSE, CLOCK_REALTIME},
                              std::pair{CLOCK_MONOTONIC_COARSE, CLOCK_MONOTONIC}}) {
    struct timespec ts;
    int64_t before = SyscallNs(fine);
    ASSERT_EQ(cg(coarse, &ts), 0);
    int64_t after = SyscallNs(fine);
    EXPECT_GE(TsNs(ts), before - 100000000LL);
    EXPECT_LE(TsNs(ts), after);
  }
  // CPU-time clocks come from the kernel too.
  struct timespec ts;
  EXPECT_EQ(cg(CLOCK_PROCESS_CPUTIME_ID, &ts), 0);
  EXPECT_GT(TsNs(ts), 0);
  EXPECT_EQ(cg(CLOCK_THREAD_CPUTIME_ID, &ts), 0);
  EXPECT_GT(TsNs(ts), 0);

  struct timeval tv;
  int64_t before = SyscallNs(CLOCK_REALTIME);
  ASSERT_EQ(gtod(&tv, nullptr), 0);
  int64_t after = SyscallNs(CLOCK_REALTIME);
  int64_t tv_ns = tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL;
  EXPECT_GE(tv_ns, before / 1000 * 1000);
  EXPECT_LE(tv_ns, after);
  time_t t1 = 0;
  time_t t2 = tm(&t1);
  EXPECT_EQ(t1, t2);
  EXPECT_GE(t2, before / 1000000000LL);

  // getcpu agrees with the syscall on a thread pinned to one CPU.
  cpu_set_t old, one;
  ASSERT_OK(sched_getaffinity(0, sizeof(old), &old));
  unsigned cpu = 0, node = 0;
  ASSERT_OK(syscall(SYS_getcpu, &cpu, &node, nullptr));
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  ASSERT_OK(sched_setaffinity(0, sizeof(one), &one));
  unsigned sys_cpu = 99, sys_node = 99, v_cpu = 98, v_node = 98;
  ASSERT_OK(syscall(SYS_getcpu, &sys_cpu, &sys_node, nullptr));
  EXPECT_EQ(gc(&v_cpu, &v_node, nullptr), 0);
  EXPECT_EQ(v_cpu, sys_cpu);
  EXPECT_EQ(v_node, sys_node);
  EXPECT_EQ(v_cpu, cpu);
  ASSERT_OK(sched_setaffinity(0, sizeof(old), &old));
}

TEST(Vdso, ErrorsMatchTheSyscall) {
  VdsoImage img(VdsoBase());
  auto cg = reinterpret_cast<ClockGettimeFn>(img.Lookup("__vdso_clock_gettime", "LINUX_2.6"));
  ASSERT_NE(cg, nullptr);
  struct timespec ts;
  // The vDSO returns the raw syscall result (-errno); glibc sets errno.
  EXPECT_EQ(cg(1234, &ts), -EINVAL);
  errno = 0;
  EXPECT_EQ(clock_gettime(1234, &ts), -1);
  EXPECT_EQ(errno, EINVAL);
}

// A forked child keeps the vDSO at the same place, working.
TEST(Vdso, ForkKeepsIt) {
  uintptr_t base = VdsoBase();
  EXPECT_CHILD_OK([&] {
    auto maps = ReadMaps();
    const MapsEntry* vdso = FindNamed(maps, "[vdso]");
    CHILD_CHECK(vdso != nullptr && vdso->start == base);
    int64_t a = NowNs(CLOCK_MONOTONIC);
    int64_t b = SyscallNs(CLOCK_MONOTONIC);
    int64_t c = NowNs(CLOCK_MONOTONIC);
    CHILD_CHECK(a <= b && b <= c);
    return 0;
  });
}

// An exec'd program gets its own vDSO: /bin/cat shows its own maps.
TEST(Vdso, ExecGetsIt) {
  if (access("/bin/cat", X_OK) != 0) GTEST_SKIP() << "no /bin/cat";
  int fds[2];
  ASSERT_OK(pipe(fds));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    execl("/bin/cat", "cat", "/proc/self/maps", nullptr);
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = RETRY_EINTR(read(fds[0], buf, sizeof(buf)))) > 0) out.append(buf, n);
  close(fds[0]);
  int status;
  ASSERT_EQ(RETRY_EINTR(waitpid(pid, &status, 0)), pid);
  EXPECT_TRUE(ExitedWith(status, 0));
  EXPECT_NE(out.find("[vdso]"), std::string::npos) << out;
  EXPECT_NE(out.find("[vvar]"), std::string::npos) << out;
}

// The vDSO's mappings can be moved together (as checkpointing tools do)
// and the moved code still tells the time; unmapping them is allowed.
TEST(Vdso, MremapAndMunmap) {
  EXPECT_CHILD_OK([] {
    auto maps = ReadMaps();
    const MapsEntry* vdso = FindNamed(maps, "[vdso]");
    const MapsEntry* vvar = FindNamed(maps, "[vvar]");
    CHILD_CHECK(vdso != nullptr && vvar != nullptr);
    uintptr_t lo = vvar->start, hi = vdso->end;
    CHILD_CHECK(lo < hi && hi - lo <= 64 * 4096);
    uintptr_t text_off = VdsoBase() - lo;
    // Reserve a destination, then move every mapping of [lo, hi) there.
    void* dst = mmap(nullptr, hi - lo, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(dst != MAP_FAILED);
    uintptr_t to = reinterpret_cast<uintptr_t>(dst);
    for (const auto& e : maps) {
      if (e.start < lo || e.end > hi) continue;
      void* r = mremap(reinterpret_cast<void*>(e.start), e.end - e.start, e.end - e.start,
                       MREMAP_MAYMOVE | MREMAP_FIXED, reinterpret_cast<void*>(to + (e.start - lo)));
      CHILD_CHECK(r != MAP_FAILED);
    }
    auto moved = ReadMaps();
    const MapsEntry* nv = FindNamed(moved, "[vdso]");
    CHILD_CHECK(nv != nullptr && nv->start == to + text_off);
    CHILD_CHECK(FindNamed(moved, "[vvar]") != nullptr);
    VdsoImage img(to + text_off);
    auto cg = reinterpret_cast<ClockGettimeFn>(img.Lookup("__vdso_clock_gettime", "LINUX_2.6"));
    CHILD_CHECK(cg != nullptr);
    struct timespec ts;
    int64_t before = SyscallNs(CLOCK_MONOTONIC);
    CHILD_CHECK(cg(CLOCK_MONOTONIC, &ts) == 0);
    int64_t after = SyscallNs(CLOCK_MONOTONIC);
    CHILD_CHECK(before <= TsNs(ts) && TsNs(ts) <= after);
    // Unmapped, the names are gone (glibc's clock_gettime would now
    // crash, so only syscalls from here).
    CHILD_CHECK(munmap(dst, hi - lo) == 0);
    auto gone = ReadMaps();
    CHILD_CHECK(FindNamed(gone, "[vdso]") == nullptr);
    CHILD_CHECK(FindNamed(gone, "[vvar]") == nullptr);
    return 0;
  });
}

}  // namespace
