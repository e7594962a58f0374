package cmd

import (
	"testing"
	"time"

	"carapace.dev/carapace/runsc/control"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"-1": -1, "0": 0, "1024": 1024, "512m": 512 << 20, "512M": 512 << 20, "1g": 1 << 30,
		"1GB": 1 << 30, "2kib": 2048, "1.5k": 1536, "3t": 3 << 40, "7b": 7,
	} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-2", "1x", "m", "99999999999p"} {
		if got, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an error", in, got)
		}
	}
}

func TestPSRow(t *testing.T) {
	now := time.Date(2026, 11, 23, 22, 0, 0, 0, time.Local)
	for _, tc := range []struct {
		p    control.Process
		want string
	}{
		{control.Process{PID: 1, UID: 0, Args: []string{"/bin/sleep", "1000"}, CPUTime: int64(3 * time.Second),
			Started: now.Add(-10 * time.Second).UnixNano()}, "root\t1\t0\t30\t21:59\t?\t00:00:03\t/bin/sleep 1000"},
		{control.Process{PID: 7, PPID: 1, UID: 0, Name: "sh", CPUTime: int64(26*time.Hour + 61*time.Second)},
			"root\t7\t1\t0\t?\t?\t1-02:01:01\t[sh]"},
		{control.Process{PID: 9, PPID: 1, UID: 0, Args: []string{"x"}, Started: now.Add(-48 * time.Hour).UnixNano()},
			"root\t9\t1\t0\tNov21\t?\t00:00:00\tx"},
	} {
		if got := psRow(tc.p, now); got != tc.want {
			t.Errorf("psRow(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"-1", "512m", "1.5GiB", "", "9e99t", "0x10", "  7k "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseBytes(s)
		if err == nil && v < -1 {
			t.Errorf("parseBytes(%q) = %d", s, v)
		}
	})
}
