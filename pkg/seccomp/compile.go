package seccomp

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"carapace.dev/carapace/pkg/bpf"
)

// Offsets of struct seccomp_data fields read by compiled filters.
const (
	offsetNr   = 0
	offsetArch = 4
	offsetArgs = 16
)

// body is the argument-checking code shared by every syscall with the same
// (effective) rules.
type body struct {
	rules []Rule // ends at the first unconditional rule
	label bpf.Label
}

// interval is a run of syscall numbers [first, next interval's first) that
// share a body key.
type interval struct {
	first uint32
	key   string
}

// compiler holds the state of one Compile.
type compiler struct {
	asm     bpf.Assembler
	opts    Options
	actions map[Action]bpf.Label
}

func (c *compiler) actionLabel(a Action) bpf.Label {
	l, ok := c.actions[a]
	if !ok {
		l = c.asm.NewLabel()
		c.actions[a] = l
	}
	return l
}

// Compile turns s into a seccomp filter program. The program checks the
// architecture, rejects x32 syscall numbers, finds the syscall by binary
// search over runs of numbers with identical rules, then checks arguments.
// Each distinct action is returned by one instruction shared by all paths
// (copied where a jump would be as long), and code that cannot run is
// dropped.
func Compile(s *RuleSet, opts Options) (bpf.Program, error) {
	if s.err != nil {
		return bpf.Program{}, fmt.Errorf("seccomp: %w", s.err)
	}
	for _, a := range []Action{opts.DefaultAction, opts.BadArchAction} {
		if err := a.valid(); err != nil {
			return bpf.Program{}, fmt.Errorf("seccomp: %w", err)
		}
	}
	c := &compiler{opts: opts, actions: map[Action]bpf.Label{}}
	defaultAction := opts.effective(opts.DefaultAction)
	defaultKey := "default"

	// Normalize each syscall's rules and give identical rule lists one key.
	bodies := map[string]*body{}
	var bodyOrder []*body
	var intervals []interval
	for _, nr := range s.Syscalls() {
		var rules []Rule
		for _, r := range s.rules[nr] {
			if err := r.Action.valid(); err != nil {
				return bpf.Program{}, fmt.Errorf("seccomp: syscall %d: %w", nr, err)
			}
			r.Action = opts.effective(r.Action)
			rules = append(rules, r)
			if r.unconditional() {
				break
			}
		}
		// Trailing rules whose action is the default change nothing.
		for len(rules) > 0 && rules[len(rules)-1].Action == defaultAction {
			rules = rules[:len(rules)-1]
		}
		key := defaultKey
		if len(rules) > 0 {
			var sb strings.Builder
			for _, r := range rules {
				fmt.Fprintf(&sb, "%v|", r)
			}
			key = sb.String()
			if _, ok := bodies[key]; !ok {
				bodies[key] = &body{rules: rules, label: c.asm.NewLabel()}
				bodyOrder = append(bodyOrder, bodies[key])
			}
		}
		intervals = appendRun(intervals, nr, key, defaultKey)
	}
	if len(intervals) == 0 || intervals[0].first != 0 {
		intervals = append([]interval{{first: 0, key: defaultKey}}, intervals...)
	}

	a := &c.asm
	badArch := c.actionLabel(opts.effective(opts.BadArchAction))
	a.Emit(bpf.Stmt(bpf.ClassLoad|bpf.SizeWord|bpf.ModeAbsolute, offsetArch))
	a.JumpIf(bpf.JumpEqual|bpf.SourceK, AuditArchX86_64, bpf.Next, badArch)
	a.Emit(bpf.Stmt(bpf.ClassLoad|bpf.SizeWord|bpf.ModeAbsolute, offsetNr))
	highNr := badArch
	if opts.AllowCancelledSyscall {
		highNr = a.NewLabel()
	}
	a.JumpIf(bpf.JumpGreaterEqual|bpf.SourceK, x32SyscallBit, highNr, bpf.Next)
	target := func(key string) bpf.Label {
		if key == defaultKey {
			return c.actionLabel(defaultAction)
		}
		b := bodies[key]
		if len(b.rules) == 1 && b.rules[0].unconditional() {
			return c.actionLabel(b.rules[0].Action)
		}
		return b.label
	}
	c.search(intervals, target)

	if opts.AllowCancelledSyscall {
		// Off the common path: only numbers past the x32 bit get here.
		a.Bind(highNr)
		a.JumpIf(bpf.JumpEqual|bpf.SourceK, cancelledSyscall, c.actionLabel(ActionAllow), badArch)
	}
	for _, b := range bodyOrder {
		if len(b.rules) == 1 && b.rules[0].unconditional() {
			continue
		}
		a.Bind(b.label)
		for _, r := range b.rules {
			fail := a.NewLabel()
			for i, m := range r.Args {
				c.matcher(i, m, fail)
			}
			a.JumpTo(c.actionLabel(r.Action))
			a.Bind(fail)
		}
		a.JumpTo(c.actionLabel(defaultAction))
	}
	actions := slices.Sorted(maps.Keys(c.actions))
	for _, action := range actions {
		a.Bind(c.actions[action])
		a.Emit(bpf.Stmt(bpf.ClassReturn|bpf.ReturnK, uint32(action)))
	}

	insns, err := a.Assemble()
	if err != nil {
		return bpf.Program{}, fmt.Errorf("seccomp: %w", err)
	}
	if len(insns) > bpf.MaxInstructions {
		return bpf.Program{}, fmt.Errorf("seccomp: compiled filter has %d instructions, more than the kernel's limit of %d; split the rule set or simplify its argument rules", len(insns), bpf.MaxInstructions)
	}
	p, err := bpf.Validate(insns, bpf.SeccompFilter)
	if err != nil {
		return bpf.Program{}, fmt.Errorf("seccomp: compiled filter rejected (compiler bug): %w\n%s", err, bpf.Disassemble(insns))
	}
	return p, nil
}

// appendRun adds syscall nr (greater than any before) with key to the
// sorted run list, which always ends with the default run that follows the
// last syscall.
func appendRun(runs []interval, nr uint32, key, defaultKey string) []interval {
	if n := len(runs); n > 0 && runs[n-1].first == nr {
		runs = runs[:n-1] // the default run after the previous syscall is empty
	}
	if n := len(runs); n == 0 || runs[n-1].key != key {
		runs = append(runs, interval{first: nr, key: key})
	}
	if runs[len(runs)-1].key != defaultKey && nr+1 < x32SyscallBit {
		runs = append(runs, interval{first: nr + 1, key: defaultKey})
	}
	return runs
}

// search emits a binary search over runs (which cover every number up to
// the x32 bit) for the syscall number in A, ending each leaf with a jump to
// its run's code.
func (c *compiler) search(runs []interval, target func(string) bpf.Label) {
	a := &c.asm
	if len(runs) == 1 {
		a.JumpTo(target(runs[0].key))
		return
	}
	mid := len(runs) / 2
	upper := a.NewLabel()
	a.JumpIf(bpf.JumpGreaterEqual|bpf.SourceK, runs[mid].first, upper, bpf.Next)
	c.search(runs[:mid], target)
	a.Bind(upper)
	c.search(runs[mid:], target)
}

func (c *compiler) load(offset uint32) {
	c.asm.Emit(bpf.Stmt(bpf.ClassLoad|bpf.SizeWord|bpf.ModeAbsolute, offset))
}

// matcher emits code that falls through when argument i satisfies m and
// jumps to fail otherwise. Arguments are 64-bit but BPF registers are 32:
// each test looks at the high word first, and the low word decides only
// when the high words are equal. Signed order differs from unsigned only in
// the high word's sign bit, so flipping that bit on both sides turns a
// signed comparison into an unsigned one.
func (c *compiler) matcher(i int, m ArgMatcher, fail bpf.Label) {
	if m.IsAny() {
		return
	}
	a := &c.asm
	lo := uint32(offsetArgs + 8*i)
	hi := lo + 4
	vlo, vhi := uint32(m.value), uint32(m.value>>32)
	const (
		jeq = bpf.JumpEqual | bpf.SourceK
		jgt = bpf.JumpGreater | bpf.SourceK
		jge = bpf.JumpGreaterEqual | bpf.SourceK
	)
	loadHigh := func() {
		c.load(hi)
		if m.signed {
			a.Emit(bpf.Stmt(bpf.ClassALU|bpf.Xor|bpf.SourceK, 0x80000000))
		}
	}
	if m.signed {
		vhi ^= 0x80000000
	}
	pass := a.NewLabel()
	switch m.op {
	case matchEqual:
		c.load(hi)
		a.JumpIf(jeq, vhi, bpf.Next, fail)
		c.load(lo)
		a.JumpIf(jeq, vlo, bpf.Next, fail)
	case matchNotEqual:
		c.load(hi)
		a.JumpIf(jeq, vhi, bpf.Next, pass)
		c.load(lo)
		a.JumpIf(jeq, vlo, fail, bpf.Next)
	case matchMaskedEqual:
		for _, half := range []struct{ offset, mask, value uint32 }{
			{hi, uint32(m.mask >> 32), vhi},
			{lo, uint32(m.mask), vlo},
		} {
			switch {
			case half.value&^half.mask != 0:
				a.JumpTo(fail) // bits outside the mask can never be equal
			case half.mask == 0:
				// 0 == 0 always holds.
			default:
				c.load(half.offset)
				if half.mask != 0xffffffff {
					a.Emit(bpf.Stmt(bpf.ClassALU|bpf.And|bpf.SourceK, half.mask))
				}
				a.JumpIf(jeq, half.value, bpf.Next, fail)
			}
		}
	case matchGreater, matchGreaterEqual:
		loadHigh()
		a.JumpIf(jgt, vhi, pass, bpf.Next)
		a.JumpIf(jeq, vhi, bpf.Next, fail)
		c.load(lo)
		if m.op == matchGreater {
			a.JumpIf(jgt, vlo, pass, fail)
		} else {
			a.JumpIf(jge, vlo, pass, fail)
		}
	case matchLess, matchLessEqual:
		loadHigh()
		a.JumpIf(jgt, vhi, fail, bpf.Next)
		a.JumpIf(jeq, vhi, bpf.Next, pass)
		c.load(lo)
		if m.op == matchLess {
			a.JumpIf(jge, vlo, fail, pass)
		} else {
			a.JumpIf(jgt, vlo, fail, pass)
		}
	}
	a.Bind(pass)
}
