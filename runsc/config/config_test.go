package config

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
)

func parse(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("runsc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return c, c.Validate()
}

func TestDefaults(t *testing.T) {
	c := Default()
	if c.RootDir != "/var/run/runsc" || c.Platform != PlatformSystrap || c.Network != NetworkSandbox || c.LogFormat != "text" || !c.Overlay {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestRoundTripThroughFlags(t *testing.T) {
	c, err := parse(t, "--root=/tmp/r", "--debug", "--platform=systrap", "--network=none",
		"--log-format=json", "--strace", "--strace-syscalls=open,read", "--overlay=false",
		"--debug-log=/tmp/logs/", "--rootless", "--systemd-cgroup")
	if err != nil {
		t.Fatal(err)
	}
	back, err := parse(t, c.ToFlags()...)
	if err != nil {
		t.Fatalf("re-parsing %v: %v", c.ToFlags(), err)
	}
	if !reflect.DeepEqual(c, back) {
		t.Fatalf("round trip changed the config:\n%+v\n%+v", c, back)
	}
	if !reflect.DeepEqual(Default().ToFlags(), func() []string { d, _ := parse(t); return d.ToFlags() }()) {
		t.Fatal("defaults differ between Default and an empty parse")
	}
}

func TestEveryFieldIsAFlag(t *testing.T) {
	// A field added to Config without a flag would silently not survive the
	// re-exec into boot and gofer.
	n := reflect.TypeOf(Config{}).NumField()
	if got := len(Default().ToFlags()); got != n {
		t.Fatalf("Config has %d fields but %d flags", n, got)
	}
}

func TestBadValues(t *testing.T) {
	for _, args := range [][]string{
		{"--platform=vmware"},
		{"--network=bridge"},
		{"--log-format=xml"},
		{"--no-such-flag"},
		{"--debug=maybe"},
		{"--strace-syscalls=open"},
		{"--root="},
	} {
		if _, err := parse(t, args...); err == nil {
			t.Errorf("%v accepted", args)
		} else if !strings.Contains(err.Error(), strings.TrimPrefix(strings.SplitN(args[0], "=", 2)[0], "--")) {
			t.Errorf("%v: error %q does not name the flag", args, err)
		}
	}
}
