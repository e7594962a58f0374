// Package specutils owns runsc's handling of OCI runtime specs: the default
// config.json that `runsc spec` writes, loading a bundle's config.json, and
// validation of a spec (which comes from the user and is untrusted) before
// anything acts on it.
package specutils

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ConfigFile is the name of a bundle's spec.
const ConfigFile = "config.json"

// Default returns the spec `runsc spec` writes: runc's defaults, with args
// as the process (sh when empty) and cwd as its working directory.
func Default(args []string, cwd string) *specs.Spec {
	if len(args) == 0 {
		args = []string{"sh"}
	}
	if cwd == "" {
		cwd = "/"
	}
	defaultCaps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: true,
			User:     specs.User{UID: 0, GID: 0},
			Args:     args,
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"TERM=xterm",
			},
			Cwd: cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  defaultCaps,
				Effective: defaultCaps,
				Permitted: defaultCaps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "runsc",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
				"/sys/firmware",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
}

// Load reads and validates bundleDir/config.json.
func Load(bundleDir string) (*specs.Spec, error) {
	p := filepath.Join(bundleDir, ConfigFile)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	spec, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return spec, nil
}

// Decode parses and validates a spec.
func Decode(data []byte) (*specs.Spec, error) {
	var spec specs.Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: trailing data after the spec")
	}
	if err := Validate(&spec); err != nil {
		return nil, err
	}
	return &spec, nil
}

// semver is SemVer 2.0.0's shape: MAJOR.MINOR.PATCH[-pre][+build].
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// Validate checks what the OCI runtime spec requires of a Linux config and
// what runsc relies on. It returns the first problem, naming the field.
func Validate(spec *specs.Spec) error {
	if spec.Version == "" {
		return errors.New("ociVersion is required")
	}
	if !semver.MatchString(spec.Version) {
		return fmt.Errorf("ociVersion %q is not a SemVer 2.0.0 version", spec.Version)
	}
	if !strings.HasPrefix(spec.Version, "1.") {
		return fmt.Errorf("ociVersion %q: only major version 1 is supported", spec.Version)
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return errors.New("root.path is required")
	}
	if p := spec.Process; p != nil {
		if err := validateProcess(p); err != nil {
			return err
		}
	}
	for i, m := range spec.Mounts {
		if m.Destination == "" {
			return fmt.Errorf("mounts[%d].destination is required", i)
		}
		if strings.ContainsRune(m.Destination, 0) || strings.ContainsRune(m.Source, 0) {
			return fmt.Errorf("mounts[%d]: paths must not contain NUL bytes", i)
		}
		if m.Type == "" && !hasOption(m.Options, "bind", "rbind") {
			return fmt.Errorf("mounts[%d] (%s): type is required unless the mount is a bind mount", i, m.Destination)
		}
	}
	if l := spec.Linux; l != nil {
		if err := validateLinux(l, spec); err != nil {
			return err
		}
	}
	return nil
}

func validateProcess(p *specs.Process) error {
	if len(p.Args) == 0 || p.Args[0] == "" {
		return errors.New("process.args must name a program")
	}
	if !path.IsAbs(p.Cwd) {
		return fmt.Errorf("process.cwd %q must be an absolute path", p.Cwd)
	}
	for _, e := range p.Env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("process.env entry %q is not of the form NAME=value", e)
		}
	}
	seen := map[string]bool{}
	for _, r := range p.Rlimits {
		if _, ok := rlimitNames[r.Type]; !ok {
			return fmt.Errorf("process.rlimits: unknown type %q", r.Type)
		}
		if seen[r.Type] {
			return fmt.Errorf("process.rlimits: %s given twice", r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			return fmt.Errorf("process.rlimits: %s soft limit %d exceeds hard limit %d", r.Type, r.Soft, r.Hard)
		}
	}
	if c := p.Capabilities; c != nil {
		for _, set := range [][]string{c.Bounding, c.Effective, c.Inheritable, c.Permitted, c.Ambient} {
			for _, name := range set {
				if _, ok := CapabilityNames[name]; !ok {
					return fmt.Errorf("process.capabilities: unknown capability %q", name)
				}
			}
		}
	}
	if p.User.Umask != nil && *p.User.Umask > 0o777 {
		return fmt.Errorf("process.user.umask %#o is out of range", *p.User.Umask)
	}
	return nil
}

func validateLinux(l *specs.Linux, spec *specs.Spec) error {
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range l.Namespaces {
		switch ns.Type {
		case specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace,
			specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace:
		default:
			return fmt.Errorf("linux.namespaces: unknown type %q", ns.Type)
		}
		if seen[ns.Type] {
			return fmt.Errorf("linux.namespaces: %q given twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" && !path.IsAbs(ns.Path) {
			return fmt.Errorf("linux.namespaces: %s path %q must be absolute", ns.Type, ns.Path)
		}
		// The Sentry is the sandbox's kernel: it makes its own PID, mount,
		// cgroup and time namespaces and cannot share another's; only the
		// host-side network, UTS and IPC namespaces can be joined. A new
		// user namespace is runsc --rootless's own (sandbox.CheckRootless
		// refuses it without --rootless, and checks the id mappings).
		switch {
		case ns.Path != "" && ns.Type != specs.NetworkNamespace && ns.Type != specs.UTSNamespace && ns.Type != specs.IPCNamespace:
			return fmt.Errorf("linux.namespaces: joining an existing %s namespace (%s) is not supported: the sandbox has its own", ns.Type, ns.Path)
		}
	}
	if spec.Hostname != "" && len(l.Namespaces) > 0 && !seen[specs.UTSNamespace] {
		return errors.New("hostname is set but linux.namespaces has no uts namespace")
	}
	if (len(l.UIDMappings) == 0) != (len(l.GIDMappings) == 0) {
		return errors.New("linux.uidMappings and linux.gidMappings must be given together")
	}
	for _, m := range append(append([]specs.LinuxIDMapping{}, l.UIDMappings...), l.GIDMappings...) {
		if m.Size == 0 {
			return errors.New("linux id mappings must have a non-zero size")
		}
	}
	for _, p := range append(append([]string{}, l.MaskedPaths...), l.ReadonlyPaths...) {
		if !path.IsAbs(p) {
			return fmt.Errorf("linux masked and readonly paths must be absolute: %q", p)
		}
	}
	return nil
}

func hasOption(opts []string, want ...string) bool {
	for _, o := range opts {
		for _, w := range want {
			if o == w {
				return true
			}
		}
	}
	return false
}

// rlimitNames maps the OCI rlimit type names to their resource numbers.
var rlimitNames = map[string]int{
	"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
	"RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
	"RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
	"RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

// RlimitResource returns the resource number of an OCI rlimit type name.
func RlimitResource(name string) (int, bool) {
	r, ok := rlimitNames[name]
	return r, ok
}

// CapabilityNames maps capability names as OCI specs spell them to their
// numbers (capabilities(7)).
var CapabilityNames = map[string]int{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
	"CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
	"CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
	"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
	"CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
	"CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
	"CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
	"CAP_CHECKPOINT_RESTORE": 40,
}
