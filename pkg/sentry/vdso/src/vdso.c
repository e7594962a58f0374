// The sandbox's vDSO: clock_gettime, gettimeofday, time, clock_getres and
// getcpu answered in the application's own address space, from the data
// page ("[vvar]") that the Sentry maps read-only just below this image and
// keeps up to date (clock.go). Whatever cannot be answered here (CPU-time
// clocks, unknown clocks, a host whose TSC is not invariant, getcpu) makes
// the real system call, which the platform traps to the Sentry as any
// other.
//
// Build: go generate (gen.go). No libc, no relocations, no writable data.

typedef unsigned int u32;
typedef unsigned long u64;
typedef long s64;

// struct vvar mirrors vvarData in clock.go: the offsets are part of the
// contract between the Sentry and every mapped copy of this image.
struct vvar {
  u32 seq;      // odd while the Sentry rewrites the fields below
  u32 mode;     // vvarModeTSC or vvarModeSyscall
  u64 base_tsc; // TSC value at which CLOCK_MONOTONIC read base_mono
  u64 base_mono;
  u64 mult;     // nanoseconds per TSC tick, scaled by 2^shift
  u32 shift;
  u32 pad;
  s64 real_offset; // CLOCK_REALTIME - CLOCK_MONOTONIC
};

enum { vvarModeTSC = 1 };

// vvar is placed by the linker script one page below the image, so it is
// reached RIP-relative and needs no relocation.
extern const volatile struct vvar vvar __attribute__((visibility("hidden")));

// Linux's clock ids (include/uapi/linux/time.h) and syscall numbers.
enum {
  kClockRealtime = 0,
  kClockMonotonic = 1,
  kClockMonotonicRaw = 4,
  kClockRealtimeCoarse = 5,
  kClockMonotonicCoarse = 6,
  kClockBoottime = 7,
};
enum {
  kSysGettimeofday = 96,
  kSysTime = 201,
  kSysClockGettime = 228,
  kSysClockGetres = 229,
  kSysGetcpu = 309,
};
#define NSEC_PER_SEC 1000000000L
// What the Sentry's clock_getres reports for the _COARSE clocks: one tick
// of a 100 Hz clock.
#define COARSE_RES_NSEC 10000000L

struct timespec {
  s64 tv_sec;
  s64 tv_nsec;
};
struct timeval {
  s64 tv_sec;
  s64 tv_usec;
};
struct timezone {
  int tz_minuteswest;
  int tz_dsttime;
};

static inline long syscall2(long nr, long a, long b) {
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "0"(nr), "D"(a), "S"(b)
                   : "rcx", "r11", "memory");
  return ret;
}

static inline long syscall3(long nr, long a, long b, long c) {
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "0"(nr), "D"(a), "S"(b), "d"(c)
                   : "rcx", "r11", "memory");
  return ret;
}

// read_tsc reads the time-stamp counter after every earlier load has
// completed. A later load (the second read of the sequence count) may
// still run first; the Sentry anchors each update a little ahead of its
// own TSC reading to cover that (clock.go, reorderGuard).
static inline u64 read_tsc(void) {
  u32 lo, hi;
  __asm__ volatile("lfence\n\trdtsc" : "=a"(lo), "=d"(hi)::"memory");
  return ((u64)hi << 32) | lo;
}

// read_clock computes CLOCK_MONOTONIC and the realtime offset from the
// data page; it returns 0, or -1 when the Sentry wants the syscall used.
static inline int read_clock(u64* mono, s64* real_offset) {
  u32 seq;
  u64 tsc, base_tsc, base_mono, mult;
  u32 shift;
  s64 off;
  for (;;) {
    seq = vvar.seq;
    if (seq & 1) {
      __asm__ volatile("pause" ::: "memory");
      continue;
    }
    __asm__ volatile("" ::: "memory");
    if (vvar.mode != vvarModeTSC) return -1;
    base_tsc = vvar.base_tsc;
    base_mono = vvar.base_mono;
    mult = vvar.mult;
    shift = vvar.shift;
    off = vvar.real_offset;
    tsc = read_tsc();
    if (vvar.seq == seq) break;
  }
  u64 delta = tsc - base_tsc;
  // A TSC a few cycles behind the updater's CPU reads as "no time yet".
  if ((s64)delta < 0) delta = 0;
  *mono = base_mono + (u64)(((unsigned __int128)delta * mult) >> shift);
  *real_offset = off;
  return 0;
}

static inline void ns_to_timespec(u64 ns, struct timespec* ts) {
  ts->tv_sec = (s64)(ns / NSEC_PER_SEC);
  ts->tv_nsec = (s64)(ns % NSEC_PER_SEC);
}

int __vdso_clock_gettime(int clock, struct timespec* ts) {
  u64 mono;
  s64 off;
  if (ts == 0) return (int)syscall2(kSysClockGettime, clock, (long)ts);
  switch (clock) {
    case kClockMonotonic:
    case kClockMonotonicRaw:
    case kClockMonotonicCoarse:
    case kClockBoottime:
      if (read_clock(&mono, &off) != 0) break;
      ns_to_timespec(mono, ts);
      return 0;
    case kClockRealtime:
    case kClockRealtimeCoarse:
      if (read_clock(&mono, &off) != 0) break;
      ns_to_timespec(mono + (u64)off, ts);
      return 0;
  }
  return (int)syscall2(kSysClockGettime, clock, (long)ts);
}

int __vdso_gettimeofday(struct timeval* tv, struct timezone* tz) {
  u64 mono;
  s64 off;
  if (read_clock(&mono, &off) != 0) {
    return (int)syscall2(kSysGettimeofday, (long)tv, (long)tz);
  }
  if (tv) {
    u64 ns = mono + (u64)off;
    tv->tv_sec = (s64)(ns / NSEC_PER_SEC);
    tv->tv_usec = (s64)(ns % NSEC_PER_SEC / 1000);
  }
  if (tz) {
    // The sandbox's timezone is UTC, as the syscall reports.
    tz->tz_minuteswest = 0;
    tz->tz_dsttime = 0;
  }
  return 0;
}

s64 __vdso_time(s64* t) {
  u64 mono;
  s64 off;
  if (read_clock(&mono, &off) != 0) return syscall2(kSysTime, (long)t, 0);
  s64 s = (s64)((mono + (u64)off) / NSEC_PER_SEC);
  if (t) *t = s;
  return s;
}

int __vdso_clock_getres(int clock, struct timespec* res) {
  s64 ns;
  switch (clock) {
    case kClockRealtime:
    case kClockMonotonic:
    case kClockMonotonicRaw:
    case kClockBoottime:
      ns = 1;
      break;
    case kClockRealtimeCoarse:
    case kClockMonotonicCoarse:
      ns = COARSE_RES_NSEC;
      break;
    default:
      return (int)syscall2(kSysClockGetres, clock, (long)res);
  }
  if (res) {
    res->tv_sec = 0;
    res->tv_nsec = ns;
  }
  return 0;
}

// getcpu always asks the Sentry: the CPU it reports is the sandbox's
// (derived from the task's affinity), not the host CPU rdtscp would give.
int __vdso_getcpu(unsigned* cpu, unsigned* node, void* cache) {
  return (int)syscall3(kSysGetcpu, (long)cpu, (long)node, (long)cache);
}

// The unprefixed names, as Linux's vDSO exports them too.
int clock_gettime(int, struct timespec*)
    __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval*, struct timezone*)
    __attribute__((weak, alias("__vdso_gettimeofday")));
s64 time(s64*) __attribute__((weak, alias("__vdso_time")));
int clock_getres(int, struct timespec*)
    __attribute__((weak, alias("__vdso_clock_getres")));
int getcpu(unsigned*, unsigned*, void*)
    __attribute__((weak, alias("__vdso_getcpu")));
