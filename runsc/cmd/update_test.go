package cmd

import "testing"

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
