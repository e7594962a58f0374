package cmd

import (
	"context"
	"flag"
	"os"
	"sort"

	"carapace.dev/carapace/runsc/sandbox"
	"carapace.dev/carapace/runsc/specutils"
	"github.com/google/subcommands"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features implements `runsc features`: the OCI features document (what
// this runtime accepts in a spec), as runc prints it.
type Features struct{}

// Name implements subcommands.Command.
func (*Features) Name() string { return "features" }

// Synopsis implements subcommands.Command.
func (*Features) Synopsis() string { return "show the enabled features" }

// Usage implements subcommands.Command.
func (*Features) Usage() string {
	return `features
	Prints the OCI runtime features document as JSON: spec versions,
	hooks, mount options, namespaces, capabilities, cgroup and seccomp
	support. Parts of the spec runsc accepts but does not act on are
	not listed.
`
}

// SetFlags implements subcommands.Command.
func (*Features) SetFlags(*flag.FlagSet) {}

// Execute implements subcommands.Command.
func (*Features) Execute(context.Context, *flag.FlagSet, ...any) subcommands.ExitStatus {
	if err := printJSON(os.Stdout, featuresDocument()); err != nil {
		return Failure("features: %v", err)
	}
	return subcommands.ExitSuccess
}

func featuresDocument() *features.Features {
	yes, no := true, false
	v2 := sandbox.CgroupV2()
	v1 := !v2
	caps := make([]string, 0, len(specutils.CapabilityNames))
	for name := range specutils.CapabilityNames {
		caps = append(caps, name)
	}
	sort.Strings(caps)
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		// createContainer and startContainer are accepted but not run
		// (they belong inside runc's container).
		Hooks:        []string{"prestart", "createRuntime", "poststart", "poststop"},
		MountOptions: []string{"bind", "rbind", "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec"},
		Linux: &features.Linux{
			// Joining a namespace by path: network, uts and ipc only.
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "uts"},
			Capabilities: caps,
			Cgroup:       &features.Cgroup{V1: &v1, V2: &v2, Systemd: &yes, SystemdUser: &no, Rdma: &no},
			Seccomp: &features.Seccomp{
				Enabled: &yes,
				Actions: []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
					"SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"},
				Operators: []string{"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
					"SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"},
				Archs:          []string{"SCMP_ARCH_X86_64"},
				KnownFlags:     []string{"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"},
				SupportedFlags: []string{"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"},
			},
			Apparmor: &features.Apparmor{Enabled: &no},
			Selinux:  &features.Selinux{Enabled: &no},
		},
	}
}
