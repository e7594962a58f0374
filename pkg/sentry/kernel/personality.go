package kernel

// personality(2) flags (include/uapi/linux/personality.h) that the
// Sentry gives meaning to.
const (
	// PerLinux is the default execution domain.
	PerLinux = 0x0000
	// AddrNoRandomize disables layout randomization at the next execve.
	AddrNoRandomize = 0x0040000
	// ReadImpliesExec makes mmap and mprotect with PROT_READ grant
	// PROT_EXEC too (where the mapping may execute), until the next
	// execve clears it.
	ReadImpliesExec = 0x0400000
	// PersonalityQuery is the argument that reads without setting.
	PersonalityQuery = 0xffffffff
)

// Personality returns the task's personality(2) value.
func (t *Task) Personality() uint32 {
	return t.personality.Load()
}

// SetPersonality implements personality(2): unless p is PersonalityQuery
// it becomes the task's personality, and the previous value is returned.
// Like Linux since 4.x (exec domains were removed) any value is stored
// and none is refused; AddrNoRandomize and ReadImpliesExec change
// behaviour here.
func (t *Task) SetPersonality(p uint32) uint32 {
	if p == PersonalityQuery {
		return t.personality.Load()
	}
	return t.personality.Swap(p)
}

// personalityForExec applies execve's change: a 64-bit image never
// inherits ReadImpliesExec (Linux's set_personality_64bit clears it, and
// x86-64 ELF files do not set it again).
func (t *Task) personalityForExec() {
	for {
		p := t.personality.Load()
		if p&ReadImpliesExec == 0 || t.personality.CompareAndSwap(p, p&^ReadImpliesExec) {
			return
		}
	}
}
