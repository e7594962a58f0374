package cmd

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"carapace.dev/carapace/runsc/config"
)

// parsed parses a runsc command line's global flags as main does.
func parsed(t *testing.T, cmdline []string) *config.Config {
	t.Helper()
	fs := flag.NewFlagSet("runsc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	conf := config.RegisterFlags(fs)
	fs.Bool("version", false, "")
	if err := fs.Parse(cmdline); err != nil {
		t.Fatal(err)
	}
	return conf
}

func TestRootlessDefaults(t *testing.T) {
	xdg := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	// Root keeps /var/run/runsc, which it can write (the e2e tests check
	// an unprivileged user's default).
	userRoot := filepath.Join(xdg, "runsc")
	if os.Geteuid() == 0 {
		userRoot = "/var/run/runsc"
	}
	for _, c := range []struct {
		cmdline []string
		network config.Network
		root    string
	}{
		// Without --rootless nothing changes.
		{[]string{"do", "true"}, config.NetworkSandbox, "/var/run/runsc"},
		{[]string{"--rootless", "do", "true"}, config.NetworkNone, userRoot},
		{[]string{"--rootless", "--network=host", "--root=/r", "run", "x"}, config.NetworkHost, "/r"},
		// An explicit sandbox stays, to be refused with a clear error.
		{[]string{"--rootless", "--network", "sandbox", "-root", "/r", "do", "true"}, config.NetworkSandbox, "/r"},
		// Flags after the subcommand are its own.
		{[]string{"--rootless", "--root=/r", "do", "--network=host"}, config.NetworkNone, "/r"},
	} {
		conf := parsed(t, c.cmdline)
		rootlessDefaults(conf, c.cmdline)
		if conf.Network != c.network {
			t.Errorf("%v: network %q, want %q", c.cmdline, conf.Network, c.network)
		}
		if conf.RootDir != c.root {
			t.Errorf("%v: root %q, want %q", c.cmdline, conf.RootDir, c.root)
		}
	}
}
