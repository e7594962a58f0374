// Package config owns runsc's global settings: the Config struct, the
// command-line flags that fill it, and the conversion back to flags with
// which runsc re-executes itself as the Sentry (boot) and the Gofer, so every
// process of a sandbox runs with the same settings. Each setting is declared
// once, in Config.bind; parsing, defaults and ToFlags all come from there.
package config

import (
	"flag"
	"fmt"
	"sort"
	"strings"
)

// Platform names how application code is run and trapped.
type Platform string

// The platforms.
const (
	PlatformPtrace  Platform = "ptrace"
	PlatformSystrap Platform = "systrap"
	PlatformKVM     Platform = "kvm"
)

// Network names the sandbox's network mode.
type Network string

// The network modes.
const (
	// NetworkSandbox runs netstack over a veth in a new network namespace.
	NetworkSandbox Network = "sandbox"
	// NetworkHost forwards sockets to the host kernel (less isolation).
	NetworkHost Network = "host"
	// NetworkNone gives the sandbox loopback only.
	NetworkNone Network = "none"
)

// Config holds every global runsc setting.
type Config struct {
	// RootDir holds one state file per container (--root).
	RootDir string
	// LogFilename receives runsc's log instead of stderr (--log).
	LogFilename string
	// LogFormat is "text" or "json" (--log-format).
	LogFormat string
	// Debug enables debug-level logging (--debug).
	Debug bool
	// DebugLog is a directory (ending in "/") or a file pattern with
	// %TIMESTAMP%, %COMMAND% and %PID%; every runsc process writes its own
	// debug log there (--debug-log).
	DebugLog string
	// DebugLogFormat is the format of the debug log (--debug-log-format).
	DebugLogFormat string
	// Platform runs the application code (--platform).
	Platform Platform
	// Network is the network mode (--network).
	Network Network
	// Strace logs every system call the application makes (--strace).
	Strace bool
	// StraceSyscalls limits --strace to these syscall names (--strace-syscalls).
	StraceSyscalls string
	// Rootless runs without host root, in a user namespace (--rootless).
	Rootless bool
	// SystemdCgroup asks for systemd-managed cgroups; accepted for runc
	// compatibility (--systemd-cgroup).
	SystemdCgroup bool
	// Overlay puts a writable tmpfs over the root filesystem so the
	// sandbox never writes to it (--overlay).
	Overlay bool
	// SeccompLogOnly makes the Sentry's and Gofer's own seccomp filters
	// log violations instead of killing, to find missing allowlist entries
	// (--seccomp-log-only). Never for production.
	SeccompLogOnly bool
}

// Default returns the configuration with every flag at its default.
func Default() *Config {
	c := &Config{}
	fs := flag.NewFlagSet("defaults", flag.ContinueOnError)
	c.bind(fs)
	return c
}

// bind registers every setting as a flag on fs, stored into c. It is the
// single list of settings: flag names, defaults, help, and validation.
func (c *Config) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.RootDir, "root", "/var/run/runsc", "root directory for storage of container state.")
	fs.StringVar(&c.LogFilename, "log", "", "file path where internal log is written, default is stderr.")
	fs.Var(oneOf(&c.LogFormat, "text", "text", "json"), "log-format", "log format: text (default) or json.")
	fs.BoolVar(&c.Debug, "debug", false, "enable debug logging.")
	fs.StringVar(&c.DebugLog, "debug-log", "", "additional location for debug logs: a directory (ending in /) or a file pattern that may use %TIMESTAMP%, %COMMAND% and %PID%; each runsc process writes its own file.")
	fs.Var(oneOf(&c.DebugLogFormat, "text", "text", "json"), "debug-log-format", "format of the debug log: text (default) or json.")
	fs.Var(oneOf((*string)(&c.Platform), string(PlatformSystrap), string(PlatformPtrace), string(PlatformSystrap), string(PlatformKVM)), "platform", "how application code runs: systrap (default), ptrace or kvm.")
	fs.Var(oneOf((*string)(&c.Network), string(NetworkSandbox), string(NetworkSandbox), string(NetworkHost), string(NetworkNone)), "network", "network mode: sandbox (netstack in a new network namespace, default), none (loopback only) or host (sockets forwarded to the host kernel: less isolation).")
	fs.BoolVar(&c.Strace, "strace", false, "log every system call the sandboxed application makes.")
	fs.StringVar(&c.StraceSyscalls, "strace-syscalls", "", "comma-separated syscall names to trace with --strace; empty traces all.")
	fs.BoolVar(&c.Rootless, "rootless", false, "run the sandbox in a user namespace without host root.")
	fs.BoolVar(&c.SystemdCgroup, "systemd-cgroup", false, "use systemd for cgroups (accepted for runc compatibility).")
	fs.BoolVar(&c.Overlay, "overlay", true, "put a writable in-memory overlay over the root filesystem so the sandbox never modifies it.")
	fs.BoolVar(&c.SeccompLogOnly, "seccomp-log-only", false, "debugging: make the Sentry's and Gofer's seccomp filters log violations instead of killing.")
}

// RegisterFlags adds every setting to fs, to be read back with FromFlags
// after fs is parsed.
func RegisterFlags(fs *flag.FlagSet) *Config {
	c := &Config{}
	c.bind(fs)
	return c
}

// Validate checks combinations that single flags cannot.
func (c *Config) Validate() error {
	if c.RootDir == "" {
		return fmt.Errorf("--root must not be empty")
	}
	if c.StraceSyscalls != "" && !c.Strace {
		return fmt.Errorf("--strace-syscalls needs --strace")
	}
	return nil
}

// ToFlags returns c as command-line flags ("--name=value"), every setting
// included, sorted by name, so that a re-executed runsc parses back an
// identical Config.
func (c *Config) ToFlags() []string {
	fs := flag.NewFlagSet("tmp", flag.ContinueOnError)
	shadow := &Config{}
	shadow.bind(fs)
	*shadow = *c
	var out []string
	fs.VisitAll(func(f *flag.Flag) {
		out = append(out, "--"+f.Name+"="+f.Value.String())
	})
	sort.Strings(out)
	return out
}

// enumValue is a string flag restricted to a fixed set of values.
type enumValue struct {
	dst     *string
	allowed []string
}

func oneOf(dst *string, def string, allowed ...string) *enumValue {
	*dst = def
	return &enumValue{dst: dst, allowed: allowed}
}

func (e *enumValue) String() string {
	if e == nil || e.dst == nil {
		return ""
	}
	return *e.dst
}

func (e *enumValue) Set(v string) error {
	for _, a := range e.allowed {
		if v == a {
			*e.dst = v
			return nil
		}
	}
	return fmt.Errorf("want one of %s", strings.Join(e.allowed, ", "))
}
