package kernel

// Process attributes set by prctl(2) that the kernel acts on.

// NoNewPrivs reports PR_GET_NO_NEW_PRIVS.
func (t *Task) NoNewPrivs() bool { return t.noNewPrivs }

// SetNoNewPrivs sets no_new_privs for good (it is inherited by clone and
// kept across execve).
func (t *Task) SetNoNewPrivs() { t.noNewPrivs = true }

// ParentDeathSignal returns PR_GET_PDEATHSIG's answer.
func (t *Task) ParentDeathSignal() int32 { return t.parentDeathSignal.Load() }

// SetParentDeathSignal records the signal sent when the parent exits (0
// for none).
func (t *Task) SetParentDeathSignal(sig int32) { t.parentDeathSignal.Store(sig) }

// Dumpable returns PR_GET_DUMPABLE's answer.
func (tg *ThreadGroup) Dumpable() int32 { return tg.dumpable.Load() }

// SetDumpable sets it (0 or 1; execve resets it to 1).
func (tg *ThreadGroup) SetDumpable(v int32) { tg.dumpable.Store(v) }

// ChildSubreaper reports PR_GET_CHILD_SUBREAPER.
func (tg *ThreadGroup) ChildSubreaper() bool {
	tg.k.mu.Lock()
	defer tg.k.mu.Unlock()
	return tg.subreaper
}

// SetChildSubreaper makes the process adopt orphaned descendants.
func (tg *ThreadGroup) SetChildSubreaper(on bool) {
	tg.k.mu.Lock()
	tg.subreaper = on
	tg.k.mu.Unlock()
}
