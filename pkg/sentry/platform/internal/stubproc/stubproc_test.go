package stubproc

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
	"golang.org/x/sys/unix"
)

func TestCheckMapFile(t *testing.T) {
	const min, max = hostarch.Addr(0x10000), hostarch.Addr(0x7f0000000000)
	r := UserRange{Min: min, Max: max}
	for _, c := range []struct {
		addr           hostarch.Addr
		offset, length uint64
		ok             bool
	}{
		{0x400000, 0, 0x1000, true},
		{0x400000, 0x3000, 0x2000, true},
		{min, 0, 0x1000, true},
		{max - 0x1000, 0, 0x1000, true},
		{max - 0x1000, 0, 0x2000, false}, // into the stub region
		{min - 0x1000, 0, 0x1000, false}, // below mmap_min_addr
		{0x400001, 0, 0x1000, false},     // unaligned address
		{0x400000, 0, 0x1001, false},     // unaligned length
		{0x400000, 0, 0, false},          // empty
		{0x400000, 0x800, 0x1000, false}, // unaligned offset
		{0xfffffffffffff000, 0, 0x2000, false},
	} {
		err := r.CheckMapFile(c.addr, c.offset, c.length)
		if (err == nil) != c.ok {
			t.Errorf("CheckMapFile(%#x, %#x, %#x) = %v, want ok=%v", c.addr, c.offset, c.length, err, c.ok)
		}
		if err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("CheckMapFile(%#x, %#x, %#x) = %v, want EINVAL", c.addr, c.offset, c.length, err)
		}
	}
}

func TestClampUnmap(t *testing.T) {
	const min, max = hostarch.Addr(0x10000), hostarch.Addr(0x7f0000000000)
	r := UserRange{Min: min, Max: max}
	for _, c := range []struct {
		addr       hostarch.Addr
		length     uint64
		start, end hostarch.Addr
		ok         bool
	}{
		{0x400000, 0x1000, 0x400000, 0x401000, true},
		{0x400800, 0x1000, 0x400000, 0x402000, true}, // widened to pages
		{0, 0x20000, min, 0x20000, true},             // clamped below
		{max - 0x1000, 0x10000, max - 0x1000, max, true},
		{0xfffffffffffff000, 0x2000, 0, 0, false}, // overflows, all above max
		{max, 0x1000, 0, 0, false},                // only the stub region
		{0, 0x1000, 0, 0, false},                  // only below min
	} {
		start, end, ok := r.ClampUnmap(c.addr, c.length)
		if ok != c.ok || (ok && (start != c.start || end != c.end)) {
			t.Errorf("ClampUnmap(%#x, %#x) = [%#x, %#x) %v, want [%#x, %#x) %v", c.addr, c.length, start, end, ok, c.start, c.end, c.ok)
		}
	}
}

func TestPageFaultAccess(t *testing.T) {
	for code, want := range map[uint64]hostarch.AccessType{
		0:            hostarch.Read,
		1:            hostarch.Read, // protection violation on a read
		1 << 1:       hostarch.Write,
		1<<1 | 1<<2:  hostarch.Write, // user-mode write
		1 << 4:       hostarch.Execute,
		1<<4 | 1<<0:  hostarch.Execute,
		1<<4 | 1<<1:  hostarch.Execute, // instruction fetch wins
		1<<2 | 1<<15: hostarch.Read,
	} {
		if got := PageFaultAccess(code); got != want {
			t.Errorf("PageFaultAccess(%#x) = %v, want %v", code, got, want)
		}
	}
}

func TestNewUserRange(t *testing.T) {
	const stubBase = 0x7ff000000000
	r := NewUserRange(stubBase)
	if r.MinUserAddress() < 0x10000 || !r.MinUserAddress().IsPageAligned() {
		t.Errorf("MinUserAddress() = %#x, want a page at or above 64 KiB", r.MinUserAddress())
	}
	if r.MaxUserAddress() != stubBase {
		t.Errorf("MaxUserAddress() = %#x, want the stub base %#x", r.MaxUserAddress(), uintptr(stubBase))
	}
	b, err := os.ReadFile("/proc/sys/vm/mmap_min_addr")
	if err != nil {
		t.Skipf("cannot read the host's mmap_min_addr: %v", err)
	}
	var host uint64
	if _, err := fmt.Sscan(string(b), &host); err != nil {
		t.Fatal(err)
	}
	if uint64(r.MinUserAddress()) < host {
		t.Errorf("MinUserAddress() = %#x is below the host's mmap_min_addr %#x", r.MinUserAddress(), host)
	}
}

// exitCode is the code RawFork's child runs in the test: it exits with
// arg0+arg1 if it found arg0 in RDI and R12 and arg1 in RSI and R13, else
// with 255.
var exitCode = []byte{
	0x4c, 0x39, 0xe7, // cmp rdi, r12
	0x75, 0x0f, // jne bad
	0x4c, 0x39, 0xee, // cmp rsi, r13
	0x75, 0x0a, // jne bad
	0x48, 0x01, 0xf7, // add rdi, rsi
	0xb8, 0xe7, 0, 0, 0, // mov eax, SYS_exit_group
	0x0f, 0x05, // syscall
	// bad:
	0xbf, 0xff, 0, 0, 0, // mov edi, 255
	0xb8, 0xe7, 0, 0, 0, // mov eax, SYS_exit_group
	0x0f, 0x05, // syscall
}

// TestReserveRegionAndRawFork reserves a region, installs exitCode in it,
// and forks a child straight into it.
func TestReserveRegionAndRawFork(t *testing.T) {
	const size = 4 * hostarch.PageSize
	var gotBase uintptr
	base, err := ReserveRegion(size, hostarch.PageSize, func(b uintptr) []byte { gotBase = b; return exitCode })
	if err != nil {
		t.Fatalf("ReserveRegion: %v", err)
	}
	t.Cleanup(func() { unix.RawSyscall(unix.SYS_MUNMAP, base, size, 0) })
	if base != gotBase || base%regionAlign != 0 || base+size > HostTaskTop {
		t.Fatalf("region at %#x (code assembled for %#x), want 4 GiB-aligned below %#x", base, gotBase, HostTaskTop)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	wantCode := fmt.Sprintf("%x-%x r-xp", base, base+hostarch.PageSize)
	wantRest := fmt.Sprintf("%x-%x ---p", base+hostarch.PageSize, base+size)
	if !strings.Contains(string(maps), wantCode) || !strings.Contains(string(maps), wantRest) {
		t.Errorf("/proc/self/maps lacks %q and %q:\n%s", wantCode, wantRest, maps)
	}

	runtime.LockOSThread()
	pid, errno := RawFork(base, 3, 4)
	runtime.UnlockOSThread()
	if errno != 0 {
		t.Fatalf("RawFork: %v", unix.Errno(errno))
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(int(pid), &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("wait4(%d): %v", pid, err)
		}
		break
	}
	if !ws.Exited() || ws.ExitStatus() != 7 {
		t.Errorf("child wait status %#x, want exit 7 (arguments 3 and 4 in RDI/R12 and RSI/R13)", uint32(ws))
	}
}

func TestReserveRegionRefusesOversizedCode(t *testing.T) {
	_, err := ReserveRegion(2*hostarch.PageSize, hostarch.PageSize, func(uintptr) []byte { return make([]byte, hostarch.PageSize+1) })
	if !errors.Is(err, unix.EINVAL) {
		t.Fatalf("ReserveRegion with too much code = %v, want EINVAL", err)
	}
}

// TestPinToAndCurrentCPU pins this thread with PinTo to each CPU it may
// use and checks that CurrentCPU then reports that CPU.
func TestPinToAndCurrentCPU(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &orig)
	tid := unix.Gettid()
	bound := -1
	for cpu := 0; cpu < 1024; cpu++ {
		if !orig.IsSet(cpu) {
			continue
		}
		PinTo(tid, cpu, &bound)
		if bound != cpu {
			t.Fatalf("PinTo(%d) left bound = %d", cpu, bound)
		}
		var now unix.CPUSet
		if err := unix.SchedGetaffinity(0, &now); err != nil {
			t.Fatal(err)
		}
		if now.Count() != 1 || !now.IsSet(cpu) {
			t.Fatalf("after PinTo(%d) the affinity has %d CPUs", cpu, now.Count())
		}
		if got := CurrentCPU(); got != uint32(cpu) {
			t.Errorf("CurrentCPU() = %d on a thread pinned to %d", got, cpu)
		}
	}
}
