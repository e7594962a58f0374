package systrap

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
)

const helperEnv = "CARAPACE_SYSTRAP_TEST_SENTRY"

// TestHelperSentry is not a test: TestStubsDieWithSentry runs it as a
// stand-in Sentry that creates a stub, prints the pids of the stub and the
// zygote, and waits to be killed.
func TestHelperSentry(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process for TestStubsDieWithSentry")
	}
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(1)
	}
	mf, err := pgalloc.New("helper")
	if err != nil {
		fail(err)
	}
	p, err := New(mf)
	if err != nil {
		fail(err)
	}
	as, err := p.NewAddressSpace()
	if err != nil {
		fail(err)
	}
	fmt.Println("pids", as.(*addressSpace).pid, p.(*Platform).zygotePID)
	time.Sleep(time.Minute)
	os.Exit(0)
}

// gone reports whether pid no longer runs (absent or a zombie).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// A Sentry killed outright takes its zygote and stubs with it.
func TestStubsDieWithSentry(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSentry$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var stub, zygote int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "pids" {
			stub, _ = strconv.Atoi(f[1])
			zygote, _ = strconv.Atoi(f[2])
			break
		}
		if len(f) > 0 && f[0] == "error" {
			t.Fatalf("helper: %s", sc.Text())
		}
	}
	if stub == 0 || zygote == 0 {
		t.Fatal("helper reported no stub")
	}
	if gone(stub) || gone(zygote) {
		t.Fatalf("stub %d or zygote %d not running while their Sentry is", stub, zygote)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for !gone(stub) || !gone(zygote) {
		if time.Now().After(deadline) {
			t.Fatalf("stub %d or zygote %d outlived its Sentry", stub, zygote)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A stub holds nothing of the Sentry's: the memory file and its two pipe
// ends, and only the stub region and the application's mappings.
func TestStubHoldsOnlyItsOwn(t *testing.T) {
	e := factory.NewEnv(t, []byte{0xcc})
	pid := e.AS.(*addressSpace).pid
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
			t.Errorf("stub holds fd %s -> %s", fd.Name(), target)
		}
	}
	if kinds["memfd"] != 1 || kinds["pipe"] != 2 {
		t.Errorf("stub fds: %v, want the memory file and two pipe ends", kinds)
	}
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(maps)), "\n") {
		f := strings.Fields(line)
		var lo, hi uint64
		fmt.Sscanf(f[0], "%x-%x", &lo, &hi)
		inStub := lo >= uint64(stub.base) && hi <= uint64(stub.base)+regionSize
		isApp := lo == uint64(0x400000)
		isVsyscall := len(f) > 5 && f[5] == "[vsyscall]"
		if !inStub && !isApp && !isVsyscall {
			t.Errorf("stub maps something of the Sentry's: %s", line)
		}
	}
}
