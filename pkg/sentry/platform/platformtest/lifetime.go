package platformtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/platform"
)

// The lifetime checks below run a re-executed test binary as a stand-in
// Sentry, because only a Sentry that dies outright (SIGKILL) shows whether
// its stubs die with it; and they read /proc to see what a stub holds.

// ProcessGone reports whether pid no longer runs (absent or a zombie).
func ProcessGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// ServeHelperSentry is the body of a test that is not one: when the
// environment variable env is set (by CheckStubsDieWithSentry), it builds
// the platform and an address space, prints the pids of the host
// processes that must die with the Sentry (the address space's stub, then
// those more returns, if more is not nil) and waits to be killed.
// Otherwise it skips.
func (f Factory) ServeHelperSentry(t *testing.T, env string, more func(platform.Platform) []int) {
	if os.Getenv(env) == "" {
		t.Skip("helper process for CheckStubsDieWithSentry")
	}
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(1)
	}
	mf, err := pgalloc.New("helper")
	if err != nil {
		fail(err)
	}
	p, err := f.New(mf)
	if err != nil {
		fail(err)
	}
	as, err := p.NewAddressSpace()
	if err != nil {
		fail(err)
	}
	pids := []int{f.StubPID(as)}
	if more != nil {
		pids = append(pids, more(p)...)
	}
	fmt.Print("pids")
	for _, pid := range pids {
		fmt.Print(" ", pid)
	}
	fmt.Println()
	time.Sleep(time.Minute)
	os.Exit(0)
}

// CheckStubsDieWithSentry runs this test binary's helperTest (a
// ServeHelperSentry with the same env) as a stand-in Sentry, checks that
// the processes it reports run, kills it with SIGKILL and checks that
// they all go within 10 seconds.
func (f Factory) CheckStubsDieWithSentry(t *testing.T, env, helperTest string) {
	if f.Check != nil {
		f.Check(t)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+helperTest+"$")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	var pids []int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 1 && f[0] == "pids" {
			for _, s := range f[1:] {
				pid, err := strconv.Atoi(s)
				if err != nil || pid <= 0 {
					t.Fatalf("helper: bad pid in %q", sc.Text())
				}
				pids = append(pids, pid)
			}
			break
		}
		if len(f) > 0 && f[0] == "error" {
			t.Fatalf("helper: %s", sc.Text())
		}
	}
	if len(pids) == 0 {
		t.Fatal("helper reported no stub")
	}
	for _, pid := range pids {
		if ProcessGone(pid) {
			t.Fatalf("process %d (of %v) not running while its Sentry is", pid, pids)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err := AwaitGone(pids, 10*time.Second); err != nil {
		t.Fatalf("after the Sentry's death: %v", err)
	}
}

// AwaitGone polls until every process in pids is gone (ProcessGone), and
// fails with the first that is not after timeout.
func AwaitGone(pids []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, pid := range pids {
		for !ProcessGone(pid) {
			if time.Now().After(deadline) {
				return fmt.Errorf("process %d (of %v) still runs after %v", pid, pids, timeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// CheckStubHoldsOnly checks that stub process pid holds nothing of the
// Sentry's. Its descriptors, counted by kind ("memfd" for the memory file
// NewPlatform makes, "pipe", else the link's target), must be exactly
// wantFDs; its mappings must lie in the stub region (inStubRegion), be the
// application code at CodeAddr or be the kernel's [vsyscall] page.
func CheckStubHoldsOnly(t testing.TB, pid int, wantFDs map[string]int, inStubRegion func(lo, hi uint64) bool) {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, fd := range fds {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		switch {
		case strings.Contains(target, "memfd:platformtest"):
			kinds["memfd"]++
		case strings.HasPrefix(target, "pipe:"):
			kinds["pipe"]++
		default:
			kinds[target]++
		}
	}
	if fmt.Sprint(kinds) != fmt.Sprint(wantFDs) { // fmt sorts map keys
		t.Errorf("stub fds: %v, want %v", kinds, wantFDs)
	}
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(maps)), "\n") {
		f := strings.Fields(line)
		var lo, hi uint64
		if _, err := fmt.Sscanf(f[0], "%x-%x", &lo, &hi); err != nil {
			t.Fatalf("unreadable maps line %q: %v", line, err)
		}
		isApp := lo == uint64(CodeAddr)
		isVsyscall := len(f) > 5 && f[5] == "[vsyscall]"
		if !inStubRegion(lo, hi) && !isApp && !isVsyscall {
			t.Errorf("stub maps something of the Sentry's: %s", line)
		}
	}
}
