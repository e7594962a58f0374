package ptrace

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

const helperEnv = "CARAPACE_PTRACE_TEST_SENTRY"

// TestHelperSentry is not a test: run by TestStubsDieWithSentry as a
// stand-in Sentry that creates a stub, reports its pid and waits to be
// killed.
func TestHelperSentry(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process for TestStubsDieWithSentry")
	}
	mf, err := pgalloc.New("helper")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	p, err := New(mf)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	as, err := p.NewAddressSpace()
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("stub", as.(*addressSpace).pid)
	time.Sleep(time.Minute)
	os.Exit(0)
}

// processGone reports whether pid no longer exists (or is a zombie).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

func TestStubsDieWithSentry(t *testing.T) {
	requirePtrace(t)
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
	sc := bufio.NewScanner(out)
	stubPID := 0
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "stub" {
			stubPID, _ = strconv.Atoi(f[1])
			break
		} else if len(f) > 0 && f[0] == "error" {
			t.Fatalf("helper: %s", sc.Text())
		}
	}
	if stubPID == 0 {
		t.Fatal("helper reported no stub")
	}
	if processGone(stubPID) {
		t.Fatalf("stub %d not running while its Sentry is", stubPID)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for !processGone(stubPID) {
		if time.Now().After(deadline) {
			t.Fatalf("stub %d outlived its Sentry", stubPID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStubHoldsOnlyTheMemoryFile(t *testing.T) {
	e := newEnv(t, insInt3)
	pid := e.AS.(*addressSpace).pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	if len(fds) != 1 {
		t.Fatalf("stub has %d fds open, want only the memory file", len(fds))
	}
	target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fds[0].Name()))
	if !strings.Contains(target, "memfd:platformtest") {
		t.Errorf("stub fd is %q, want the memory file", target)
	}
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(maps)), "\n") {
		f := strings.Fields(line)
		var lo, hi uint64
		fmt.Sscanf(f[0], "%x-%x", &lo, &hi)
		inStub := lo >= uint64(stub.base) && hi <= uint64(stub.end)
		isApp := lo == uint64(codeAddr)
		isVsyscall := len(f) > 5 && f[5] == "[vsyscall]"
		if !inStub && !isApp && !isVsyscall {
			t.Errorf("stub maps something of the Sentry's: %s", line)
		}
	}
}
