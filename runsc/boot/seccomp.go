package boot

import (
	"fmt"
	"slices"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/bpf"
	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/seccomp"
	"carapace.dev/carapace/pkg/sentry/kernel"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// applySpecSeccomp installs the spec's linux.seccomp profile (e.g. Docker's
// default) as a guest filter on the container's first process, before it
// runs its first instruction, as runc does before execve. The Sentry
// enforces it like any filter the program installed itself; it is
// inherited by every process the container starts.
func applySpecSeccomp(spec *specs.Spec, tg *kernel.ThreadGroup) error {
	if spec.Linux == nil || spec.Linux.Seccomp == nil {
		return nil
	}
	p, opts, err := CompileSpecSeccomp(spec.Linux.Seccomp)
	if err != nil {
		return err
	}
	if _, err := tg.Leader().AppendSeccompFilter(p, opts); err != nil {
		return fmt.Errorf("installing the spec's seccomp profile: %w", err)
	}
	return nil
}

// CompileSpecSeccomp converts an OCI seccomp profile into a filter
// program, following runc and libseccomp: syscall names the syscall table
// does not know are skipped; an entry whose arguments name one index more
// than once becomes one alternative per condition; for each syscall the
// entries with argument conditions are tried before those without, in
// spec order. Unknown actions, operators, flags and argument indexes are
// errors, as is user notification, which the Sentry cannot provide.
func CompileSpecSeccomp(s *specs.LinuxSeccomp) (bpf.Program, kernel.SeccompFilterOptions, error) {
	var opts kernel.SeccompFilterOptions
	fail := func(format string, args ...any) (bpf.Program, kernel.SeccompFilterOptions, error) {
		return bpf.Program{}, opts, fmt.Errorf("spec linux.seccomp: "+format, args...)
	}
	if s.ListenerPath != "" {
		return fail("listenerPath %q: user notification is not supported", s.ListenerPath)
	}
	for _, f := range s.Flags {
		switch f {
		case specs.LinuxSeccompFlagLog:
			opts.Log = true
		case specs.LinuxSeccompFlagSpecAllow:
			// Speculation mitigations are the host's business.
		default:
			return fail("unsupported flag %q", f)
		}
	}
	for _, a := range s.Architectures {
		if !knownArch(a) {
			return fail("unknown architecture %q", a)
		}
	}
	defaultAction, err := specAction(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return fail("defaultAction: %v", err)
	}
	rules := seccomp.NewRuleSet()
	var unconditional []func()
	for i, sc := range s.Syscalls {
		action, err := specAction(sc.Action, sc.ErrnoRet)
		if err != nil {
			return fail("syscalls[%d]: %v", i, err)
		}
		alternatives, err := specArgRules(sc.Args, action)
		if err != nil {
			return fail("syscalls[%d]: %v", i, err)
		}
		for _, name := range sc.Names {
			nr, ok := linux.SyscallNumber(name)
			if !ok {
				log.Debugf("spec linux.seccomp: skipping syscall %q, unknown on amd64", name)
				continue
			}
			if alternatives == nil {
				unconditional = append(unconditional, func() { rules.Add(nr, action) })
				continue
			}
			for _, r := range alternatives {
				rules.AddRule(nr, r)
			}
		}
	}
	for _, add := range unconditional {
		add()
	}
	p, err := seccomp.Compile(rules, seccomp.Options{
		DefaultAction: defaultAction,
		// The Sentry serves only native syscalls: numbers of another ABI
		// get the profile's default.
		BadArchAction: defaultAction,
	})
	if err != nil {
		return fail("%v", err)
	}
	return p, opts, nil
}

func knownArch(a specs.Arch) bool {
	return slices.Contains([]specs.Arch{
		specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
		specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64,
		specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE, specs.ArchS390,
		specs.ArchS390X, specs.ArchPARISC, specs.ArchPARISC64, specs.ArchRISCV64,
		specs.ArchLOONGARCH64, specs.ArchM68K, specs.ArchSH, specs.ArchSHEB,
	}, a)
}

// specAction converts an OCI action; errnoRet is the errno of
// SCMP_ACT_ERRNO (EPERM when absent) and the message of SCMP_ACT_TRACE.
func specAction(a specs.LinuxSeccompAction, errnoRet *uint) (seccomp.Action, error) {
	data := uint(unix.EPERM)
	if errnoRet != nil {
		data = *errnoRet
	}
	if errnoRet != nil && a != specs.ActErrno && a != specs.ActTrace {
		return 0, fmt.Errorf("errnoRet is only valid with %s or %s, not %q", specs.ActErrno, specs.ActTrace, a)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return seccomp.ActionKillThread, nil
	case specs.ActKillProcess:
		return seccomp.ActionKillProcess, nil
	case specs.ActTrap:
		return seccomp.ActionTrap, nil
	case specs.ActErrno:
		if data > 0xffff {
			return 0, fmt.Errorf("errnoRet %d does not fit the action's 16 data bits", data)
		}
		return seccomp.Errno(unix.Errno(data)), nil
	case specs.ActTrace:
		if data > 0xffff {
			return 0, fmt.Errorf("errnoRet %d does not fit the action's 16 data bits", data)
		}
		return seccomp.Trace(uint16(data)), nil
	case specs.ActAllow:
		return seccomp.ActionAllow, nil
	case specs.ActLog:
		return seccomp.ActionLog, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("action %s: user notification is not supported", a)
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

// specArgRules turns an entry's argument conditions into rule
// alternatives (nil for an entry without conditions).
func specArgRules(args []specs.LinuxSeccompArg, action seccomp.Action) ([]seccomp.Rule, error) {
	if len(args) == 0 {
		return nil, nil
	}
	var perIndex [6]int
	matchers := make([]seccomp.ArgMatcher, len(args))
	for i, a := range args {
		if a.Index >= uint(len(perIndex)) {
			return nil, fmt.Errorf("args[%d]: index %d, but syscalls have 6 arguments", i, a.Index)
		}
		perIndex[a.Index]++
		m, err := specMatcher(a)
		if err != nil {
			return nil, fmt.Errorf("args[%d]: %v", i, err)
		}
		matchers[i] = m
	}
	repeated := slices.ContainsFunc(perIndex[:], func(n int) bool { return n > 1 })
	if repeated {
		// runc's reading: each condition on its own is an alternative.
		rules := make([]seccomp.Rule, len(args))
		for i, a := range args {
			rules[i].Action = action
			rules[i].Args[a.Index] = matchers[i]
		}
		return rules, nil
	}
	r := seccomp.Rule{Action: action}
	for i, a := range args {
		r.Args[a.Index] = matchers[i]
	}
	return []seccomp.Rule{r}, nil
}

func specMatcher(a specs.LinuxSeccompArg) (seccomp.ArgMatcher, error) {
	switch a.Op {
	case specs.OpNotEqual:
		return seccomp.NotEqualTo(a.Value), nil
	case specs.OpLessThan:
		return seccomp.LessThan(a.Value), nil
	case specs.OpLessEqual:
		return seccomp.LessThanOrEqual(a.Value), nil
	case specs.OpEqualTo:
		return seccomp.EqualTo(a.Value), nil
	case specs.OpGreaterEqual:
		return seccomp.GreaterThanOrEqual(a.Value), nil
	case specs.OpGreaterThan:
		return seccomp.GreaterThan(a.Value), nil
	case specs.OpMaskedEqual:
		// libseccomp: the argument masked with value equals valueTwo.
		return seccomp.MaskedEqual(a.Value, a.ValueTwo), nil
	}
	return seccomp.ArgMatcher{}, fmt.Errorf("unknown operator %q", a.Op)
}
