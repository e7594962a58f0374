package specutils

import (
	"fmt"
	"sort"

	"carapace.dev/carapace/pkg/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// standardDevices are the devices the Sentry's own /dev supplies, so
// listing them in linux.devices asks for nothing runsc leaves out.
var standardDevices = map[string]bool{
	"/dev/null": true, "/dev/zero": true, "/dev/full": true,
	"/dev/random": true, "/dev/urandom": true, "/dev/tty": true,
	"/dev/console": true, "/dev/ptmx": true,
}

// Ignored lists the fields of spec that are valid OCI but that runsc does
// not apply, one line per field naming it and why. Mounts of types the
// Sentry lacks are reported by the boot when it mounts.
func Ignored(spec *specs.Spec) []string {
	var out []string
	add := func(field, why string) { out = append(out, field+": "+why) }
	if p := spec.Process; p != nil {
		if p.ApparmorProfile != "" {
			add("process.apparmorProfile", "not applied: the sandbox's own kernel is the confinement")
		}
		if p.SelinuxLabel != "" {
			add("process.selinuxLabel", "SELinux labels are not supported")
		}
		if p.OOMScoreAdj != nil {
			add("process.oomScoreAdj", "not applied to the sandbox")
		}
		if p.Scheduler != nil {
			add("process.scheduler", "scheduling policy is not applied")
		}
		if p.IOPriority != nil {
			add("process.ioPriority", "I/O priority is not applied")
		}
		if p.ExecCPUAffinity != nil {
			add("process.execCPUAffinity", "CPU affinity is not applied")
		}
	}
	l := spec.Linux
	if l == nil {
		return out
	}
	if l.Personality != nil {
		add("linux.personality", fmt.Sprintf("execution domain %q is not supported; programs run as LINUX", l.Personality.Domain))
	}
	if l.IntelRdt != nil {
		add("linux.intelRdt", "Intel RDT (resctrl) is not supported")
	}
	if len(l.Sysctl) > 0 {
		keys := make([]string, 0, len(l.Sysctl))
		for k := range l.Sysctl {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		add("linux.sysctl", fmt.Sprintf("%v not applied: the sandbox's kernel parameters are its own", keys))
	}
	for _, d := range l.Devices {
		if !standardDevices[d.Path] {
			add("linux.devices", fmt.Sprintf("%s is not created: the sandbox's /dev has only its own devices", d.Path))
		}
	}
	if l.MountLabel != "" {
		add("linux.mountLabel", "SELinux labels are not supported")
	}
	if l.RootfsPropagation != "" {
		add("linux.rootfsPropagation", fmt.Sprintf("%q is not applied: sandbox mounts do not propagate to the host", l.RootfsPropagation))
	}
	if len(l.TimeOffsets) > 0 {
		add("linux.timeOffsets", "time namespaces are not supported")
	}
	if len(l.NetDevices) > 0 {
		add("linux.netDevices", "moving host network devices into the sandbox is not supported")
	}
	return out
}

// WarnIgnored logs a warning for each field Ignored reports, so that
// nothing in a spec is dropped silently.
func WarnIgnored(spec *specs.Spec) {
	for _, w := range Ignored(spec) {
		log.Warningf("spec field ignored: %s", w)
	}
}
