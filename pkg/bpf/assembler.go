package bpf

import (
	"errors"
	"fmt"
)

// Label names a position in a program being assembled.
type Label int

// Next is the label of the instruction after a jump: a branch to Next falls
// through.
const Next Label = -1

type itemKind uint8

const (
	itemPlain itemKind = iota
	itemJumpAlways
	itemConditional
)

type asmItem struct {
	ins             Instruction
	kind            itemKind
	ifTrue, ifFalse Label // the JumpAlways target is ifTrue
}

// Assembler builds a program from instructions and labelled jumps. Assemble
// resolves the labels, removes jumps to jumps and code that cannot run, and
// turns conditional jumps too far for their 8-bit offsets into short jumps to
// unconditional ones.
type Assembler struct {
	items   []asmItem
	labelAt []int
	err     error
}

// NewLabel returns a fresh, unbound label.
func (a *Assembler) NewLabel() Label {
	a.labelAt = append(a.labelAt, -1)
	return Label(len(a.labelAt) - 1)
}

// Bind places l at the next instruction emitted.
func (a *Assembler) Bind(l Label) {
	if l < 0 || int(l) >= len(a.labelAt) {
		a.setErr(fmt.Errorf("bind of unknown label %d", l))
		return
	}
	if a.labelAt[l] >= 0 {
		a.setErr(fmt.Errorf("label %d bound twice", l))
		return
	}
	a.labelAt[l] = len(a.items)
}

// Emit appends a non-jump instruction.
func (a *Assembler) Emit(ins Instruction) {
	if ins.OpCode&classMask == ClassJump {
		a.setErr(fmt.Errorf("Emit of jump %s: use JumpTo or JumpIf", mnemonic(ins)))
		return
	}
	a.items = append(a.items, asmItem{ins: ins})
}

// JumpTo appends an unconditional jump to l.
func (a *Assembler) JumpTo(l Label) {
	a.items = append(a.items, asmItem{ins: Stmt(ClassJump|JumpAlways, 0), kind: itemJumpAlways, ifTrue: l})
}

// JumpIf appends a conditional jump: cond is one of JumpEqual, JumpGreater,
// JumpGreaterEqual or JumpSet, or'ed with SourceK (compare with k) or SourceX.
func (a *Assembler) JumpIf(cond uint16, k uint32, ifTrue, ifFalse Label) {
	op := ClassJump | cond
	if !opcodeAllowed[op] || cond&opMask == JumpAlways {
		a.setErr(fmt.Errorf("JumpIf with bad condition %#x", cond))
		return
	}
	a.items = append(a.items, asmItem{ins: Stmt(op, k), kind: itemConditional, ifTrue: ifTrue, ifFalse: ifFalse})
}

func (a *Assembler) setErr(err error) {
	if a.err == nil {
		a.err = err
	}
}

// Assemble returns the finished instructions. It does not validate them;
// pass them to Validate.
func (a *Assembler) Assemble() ([]Instruction, error) {
	if a.err != nil {
		return nil, fmt.Errorf("bpf assembler: %w", a.err)
	}
	n := len(a.items)
	if n == 0 {
		return nil, errors.New("bpf assembler: empty program")
	}
	// Resolve labels to item indices.
	ifTrue := make([]int, n)
	ifFalse := make([]int, n)
	resolve := func(i int, l Label) (int, error) {
		t := i + 1
		if l != Next {
			if l < 0 || int(l) >= len(a.labelAt) || a.labelAt[l] < 0 {
				return 0, fmt.Errorf("instruction %d: jump to unbound label %d", i, l)
			}
			t = a.labelAt[l]
		}
		if t <= i {
			return 0, fmt.Errorf("instruction %d: backward jump to %d", i, t)
		}
		if t >= n {
			return 0, fmt.Errorf("instruction %d: jump past the end of the program", i)
		}
		return t, nil
	}
	items := append([]asmItem(nil), a.items...)
	for i, it := range items {
		var err error
		switch it.kind {
		case itemJumpAlways:
			ifTrue[i], err = resolve(i, it.ifTrue)
		case itemConditional:
			if ifTrue[i], err = resolve(i, it.ifTrue); err == nil {
				ifFalse[i], err = resolve(i, it.ifFalse)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("bpf assembler: %w", err)
		}
	}

	live := optimize(items, ifTrue, ifFalse)
	return layout(items, ifTrue, ifFalse, live), nil
}

// optimize threads jumps through unconditional jumps, replaces jumps to
// returns by the return, folds conditional jumps with equal targets, and
// drops unreachable instructions and jumps to the next instruction. It
// returns which items remain.
func optimize(items []asmItem, ifTrue, ifFalse []int) []bool {
	n := len(items)
	removed := make([]bool, n)
	live := make([]bool, n)
	thread := func(t int) int {
		for items[t].kind == itemJumpAlways {
			t = ifTrue[t]
		}
		return t
	}
	for changed := true; changed; {
		changed = false
		for i := n - 1; i >= 0; i-- {
			if removed[i] {
				continue
			}
			switch items[i].kind {
			case itemJumpAlways:
				t := thread(ifTrue[i])
				if items[t].ins.IsReturn() {
					items[i] = asmItem{ins: items[t].ins}
					changed = true
				} else if t != ifTrue[i] {
					ifTrue[i] = t
					changed = true
				}
			case itemConditional:
				ifTrue[i], ifFalse[i] = thread(ifTrue[i]), thread(ifFalse[i])
				t, f := items[ifTrue[i]], items[ifFalse[i]]
				if ifTrue[i] == ifFalse[i] || t.kind == itemPlain && t.ins.IsReturn() && t.ins == f.ins && f.kind == itemPlain {
					items[i] = asmItem{ins: Stmt(ClassJump|JumpAlways, 0), kind: itemJumpAlways}
					changed = true
				}
			}
		}
		// Jumps to the next remaining instruction do nothing. After
		// threading no jump targets an unconditional jump, so only
		// fall-through reaches one, and it then lands on the same place.
		next := n
		for i := n - 1; i >= 0; i-- {
			if removed[i] {
				continue
			}
			if items[i].kind == itemJumpAlways && ifTrue[i] == next {
				removed[i] = true
				changed = true
				continue
			}
			next = i
		}
		// Reachability; forward-only jumps make one pass enough.
		for i := range live {
			live[i] = false
		}
		markFallThrough := func(i int) {
			for j := i; j < n; j++ {
				if !removed[j] {
					live[j] = true
					return
				}
			}
		}
		markFallThrough(0)
		for i := 0; i < n; i++ {
			if !live[i] {
				continue
			}
			switch items[i].kind {
			case itemPlain:
				if !items[i].ins.IsReturn() {
					markFallThrough(i + 1)
				}
			case itemJumpAlways:
				live[ifTrue[i]] = true
			case itemConditional:
				live[ifTrue[i]] = true
				live[ifFalse[i]] = true
			}
		}
		for i := range live {
			if !live[i] && !removed[i] {
				removed[i] = true
				changed = true
			}
		}
	}
	return live
}

// layout assigns positions, adding an unconditional jump after each
// conditional jump whose target is beyond its 8-bit reach.
func layout(items []asmItem, ifTrue, ifFalse []int, live []bool) []Instruction {
	n := len(items)
	farTrue := make([]bool, n)
	farFalse := make([]bool, n)
	pos := make([]int, n+1)
	for {
		p := 0
		for i := 0; i < n; i++ {
			pos[i] = p
			if !live[i] {
				continue
			}
			p++
			if farTrue[i] {
				p++
			}
			if farFalse[i] {
				p++
			}
		}
		pos[n] = p
		grew := false
		for i := 0; i < n; i++ {
			if !live[i] || items[i].kind != itemConditional {
				continue
			}
			if !farTrue[i] && pos[ifTrue[i]]-pos[i]-1 > 255 {
				farTrue[i], grew = true, true
			}
			if !farFalse[i] && pos[ifFalse[i]]-pos[i]-1 > 255 {
				farFalse[i], grew = true, true
			}
		}
		if !grew {
			break
		}
	}
	// A trampoline to a return is the return itself.
	trampoline := func(at, target int) Instruction {
		if items[target].ins.IsReturn() && items[target].kind == itemPlain {
			return items[target].ins
		}
		return Stmt(ClassJump|JumpAlways, uint32(pos[target]-at-1))
	}
	out := make([]Instruction, 0, pos[n])
	for i := 0; i < n; i++ {
		if !live[i] {
			continue
		}
		it := items[i]
		switch it.kind {
		case itemPlain:
			out = append(out, it.ins)
		case itemJumpAlways:
			out = append(out, Stmt(ClassJump|JumpAlways, uint32(pos[ifTrue[i]]-pos[i]-1)))
		case itemConditional:
			ins := it.ins
			next := pos[i] + 1
			if farTrue[i] {
				ins.JumpIfTrue = 0
				next++
			} else {
				ins.JumpIfTrue = uint8(pos[ifTrue[i]] - pos[i] - 1)
			}
			if farFalse[i] {
				ins.JumpIfFalse = uint8(next - pos[i] - 1)
			} else {
				ins.JumpIfFalse = uint8(pos[ifFalse[i]] - pos[i] - 1)
			}
			out = append(out, ins)
			if farTrue[i] {
				out = append(out, trampoline(pos[i]+1, ifTrue[i]))
			}
			if farFalse[i] {
				out = append(out, trampoline(next, ifFalse[i]))
			}
		}
	}
	return out
}
