package kernel

import (
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/usermem"
)

// straceMemory lets the strace formatter read the structs a syscall's
// arguments point to, from the task's current address space.
type straceMemory struct{ t *Task }

// ReadMemory implements strace.Memory.
func (m straceMemory) ReadMemory(addr uintptr, p []byte) bool {
	if m.t.mm == nil {
		return false
	}
	n, err := m.t.mm.CopyIn(m.t, hostarch.Addr(addr), p, usermem.IOOpts{})
	return err == nil && n == len(p)
}
