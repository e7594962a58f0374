package cmd

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]unix.Signal{
		"9": unix.SIGKILL, "KILL": unix.SIGKILL, "SIGKILL": unix.SIGKILL, "term": unix.SIGTERM,
		"sigusr1": unix.SIGUSR1, "64": unix.Signal(64),
	} {
		if got, err := parseSignal(in); err != nil || got != want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "65", "-1", "NOPE", "", "SIG"} {
		if _, err := parseSignal(bad); err == nil {
			t.Errorf("parseSignal(%q) accepted", bad)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "B=2"}, []string{"B=3", "C=4"})
	if want := []string{"A=1", "B=3", "C=4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("mergeEnv = %v, want %v", got, want)
	}
}

func TestParseUser(t *testing.T) {
	if u, g, err := parseUser("1000:100"); err != nil || u != 1000 || g != 100 {
		t.Errorf("parseUser(1000:100) = %d, %d, %v", u, g, err)
	}
	if u, g, err := parseUser("7"); err != nil || u != 7 || g != 0 {
		t.Errorf("parseUser(7) = %d, %d, %v", u, g, err)
	}
	for _, bad := range []string{"root", "1:x", "", "-1", "99999999999"} {
		if _, _, err := parseUser(bad); err == nil {
			t.Errorf("parseUser(%q) accepted", bad)
		}
	}
}

func TestWaitStatusCode(t *testing.T) {
	if c := waitStatusCode(3 << 8); c != 3 {
		t.Errorf("exit 3 -> %d", c)
	}
	if c := waitStatusCode(uint32(unix.SIGKILL)); c != 137 {
		t.Errorf("SIGKILL -> %d", c)
	}
}
