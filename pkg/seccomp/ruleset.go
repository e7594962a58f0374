package seccomp

import (
	"fmt"
	"slices"
	"strings"

	"carapace.dev/carapace/pkg/bpf"
)

// AuditArchX86_64 is AUDIT_ARCH_X86_64, the arch of native x86-64 syscalls.
const AuditArchX86_64 = 0xc000003e

// x32SyscallBit marks x32-ABI syscall numbers (__X32_SYSCALL_BIT); every
// number at or above it is rejected as a foreign ABI.
const x32SyscallBit = 0x40000000

// Rule is one alternative for a syscall: if every argument matcher matches,
// the filter returns Action.
type Rule struct {
	Args   [6]ArgMatcher
	Action Action
}

// Matches reports whether every argument of d satisfies the rule.
func (r Rule) Matches(d *bpf.SeccompData) bool {
	for i, m := range r.Args {
		if !m.Matches(d.Args[i]) {
			return false
		}
	}
	return true
}

func (r Rule) unconditional() bool {
	for _, m := range r.Args {
		if !m.IsAny() {
			return false
		}
	}
	return true
}

func (r Rule) String() string {
	var parts []string
	for i, m := range r.Args {
		if !m.IsAny() {
			parts = append(parts, fmt.Sprintf("arg%d %v", i, m))
		}
	}
	if len(parts) == 0 {
		return r.Action.String()
	}
	return fmt.Sprintf("%s if %s", r.Action, strings.Join(parts, " && "))
}

// RuleSet maps syscall numbers to ordered alternative rules. For a syscall,
// the first rule whose matchers all match decides; if none does, the
// default action applies. The zero value is an empty set ready to use.
type RuleSet struct {
	rules map[uint32][]Rule
	err   error // the first misuse of Add, reported by Compile
}

// NewRuleSet returns an empty rule set.
func NewRuleSet() *RuleSet { return &RuleSet{} }

// AddRule appends an alternative for syscall nr.
func (s *RuleSet) AddRule(nr uintptr, r Rule) *RuleSet {
	if s.rules == nil {
		s.rules = map[uint32][]Rule{}
	}
	if nr >= x32SyscallBit {
		if s.err == nil {
			s.err = fmt.Errorf("syscall number %#x is not a native x86-64 syscall", nr)
		}
		return s
	}
	s.rules[uint32(nr)] = append(s.rules[uint32(nr)], r)
	return s
}

// Add appends an alternative for syscall nr: action when argument i matches
// args[i] for every i given (the rest match anything).
func (s *RuleSet) Add(nr uintptr, action Action, args ...ArgMatcher) *RuleSet {
	var r Rule
	if len(args) > len(r.Args) {
		if s.err == nil {
			s.err = fmt.Errorf("syscall %d: %d argument matchers, but syscalls have %d arguments", nr, len(args), len(r.Args))
		}
		return s
	}
	r.Action = action
	copy(r.Args[:], args)
	return s.AddRule(nr, r)
}

// Allow allows each syscall in nrs whatever its arguments.
func (s *RuleSet) Allow(nrs ...uintptr) *RuleSet {
	for _, nr := range nrs {
		s.Add(nr, ActionAllow)
	}
	return s
}

// Merge appends other's alternatives after s's own, syscall by syscall.
func (s *RuleSet) Merge(other *RuleSet) *RuleSet {
	if s.err == nil {
		s.err = other.err
	}
	for nr, rules := range other.rules {
		for _, r := range rules {
			s.AddRule(uintptr(nr), r)
		}
	}
	return s
}

// Syscalls returns the syscall numbers that have rules, in increasing order.
func (s *RuleSet) Syscalls() []uint32 {
	nrs := make([]uint32, 0, len(s.rules))
	for nr := range s.rules {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	return nrs
}

// Rules returns a copy of syscall nr's alternatives.
func (s *RuleSet) Rules(nr uint32) []Rule {
	return slices.Clone(s.rules[nr])
}

// Options control how a rule set becomes a filter. Note that the zero
// Action is ActionKillThread, which in a multi-threaded Go process leaves
// the rest of the process running without the killed thread (usually a
// hang); Carapace's own filters should set ActionKillProcess explicitly.
type Options struct {
	// DefaultAction applies to syscalls with no matching rule.
	DefaultAction Action
	// BadArchAction applies to syscalls made through another ABI: a
	// non-x86-64 arch (e.g. int 0x80) or an x32 syscall number.
	BadArchAction Action
	// LogInsteadOfKill turns every kill action into ActionLog, so that a
	// debugging run reports forbidden syscalls in the audit log instead of
	// dying on the first one.
	LogInsteadOfKill bool
	// KernelLog sets SECCOMP_FILTER_FLAG_LOG at install time: the kernel
	// logs every action other than allow.
	KernelLog bool
	// AllowCancelledSyscall allows syscall number -1 instead of applying
	// BadArchAction to it. A ptrace tracer that resumes a thread stopped
	// at syscall entry with orig_rax set to -1 cancels the syscall, yet the
	// kernel still runs the filter on number -1 before failing it with
	// ENOSYS; a process whose traced children inherit its filter (the
	// ptrace platform's stubs) needs this.
	AllowCancelledSyscall bool
}

// cancelledSyscall is syscall number -1 as the filter sees it.
const cancelledSyscall = 0xffffffff

func (o Options) effective(a Action) Action {
	if o.LogInsteadOfKill && a.isKill() {
		return ActionLog
	}
	return a
}

// Evaluate returns the action the compiled filter takes for d, computed
// directly from the rules. It is the specification Compile is tested
// against, and is not meant for hot paths.
func (s *RuleSet) Evaluate(d *bpf.SeccompData, opts Options) Action {
	if d.Arch == AuditArchX86_64 && uint32(d.Nr) == cancelledSyscall && opts.AllowCancelledSyscall {
		return ActionAllow
	}
	if d.Arch != AuditArchX86_64 || uint32(d.Nr) >= x32SyscallBit {
		return opts.effective(opts.BadArchAction)
	}
	for _, r := range s.rules[uint32(d.Nr)] {
		if r.Matches(d) {
			return opts.effective(r.Action)
		}
	}
	return opts.effective(opts.DefaultAction)
}
