package kernel

import "sync/atomic"

// IOCounts are read/write-family syscall totals, as /proc/[pid]/io and
// /proc/[pid]/task/[tid]/io report them (rchar, wchar, syscr, syscw).
// Each task counts its own calls (Task.IOCounts); its thread group keeps
// what its exited threads counted and what its reaped children did, so
// the process total (ThreadGroup.IOTotals) is that plus its live threads.
// As on Linux (measured on 6.18), only the read/write family counts, on
// sockets too; send(2)/recv(2) and their msg/mmsg forms do not. Atomics,
// so the I/O paths count without a lock and without allocating.
type IOCounts struct {
	// ReadBytes and WriteBytes are rchar and wchar: bytes moved by
	// read-family and write-family syscalls, whatever the file.
	ReadBytes, WriteBytes atomic.Uint64
	// ReadCalls and WriteCalls are syscr and syscw: how many such calls.
	ReadCalls, WriteCalls atomic.Uint64
}

// IOSnapshot is a copy of IOCounts at one moment.
type IOSnapshot struct {
	ReadBytes, WriteBytes, ReadCalls, WriteCalls uint64
}

// Snapshot returns the counters' current values.
func (c *IOCounts) Snapshot() IOSnapshot {
	return IOSnapshot{c.ReadBytes.Load(), c.WriteBytes.Load(), c.ReadCalls.Load(), c.WriteCalls.Load()}
}

func (s IOSnapshot) add(o IOSnapshot) IOSnapshot {
	return IOSnapshot{s.ReadBytes + o.ReadBytes, s.WriteBytes + o.WriteBytes, s.ReadCalls + o.ReadCalls, s.WriteCalls + o.WriteCalls}
}

// AccountRead records one read-family call that moved n bytes (n <= 0
// for a failed or empty call still counts the call, as Linux does).
func (c *IOCounts) AccountRead(n int64) {
	c.ReadCalls.Add(1)
	if n > 0 {
		c.ReadBytes.Add(uint64(n))
	}
}

// AccountWrite records one write-family call that moved n bytes.
func (c *IOCounts) AccountWrite(n int64) {
	c.WriteCalls.Add(1)
	if n > 0 {
		c.WriteBytes.Add(uint64(n))
	}
}

// IOCounts returns the task's own I/O counters, which its read and write
// syscalls feed (/proc/[pid]/task/[tid]/io).
func (t *Task) IOCounts() *IOCounts { return &t.ioCounts }

// IOTotals returns the process's I/O totals (/proc/[pid]/io): its live
// threads' counts, its exited threads' and its reaped children's. Under
// signalMu, so that a thread folding its counts into the group as it
// exits (foldExitedIO) is counted exactly once.
func (tg *ThreadGroup) IOTotals() IOSnapshot {
	tg.signalMu.Lock()
	defer tg.signalMu.Unlock()
	sum := tg.ioCounts.Snapshot()
	for _, t := range tg.tasks {
		sum = sum.add(t.ioCounts.Snapshot())
	}
	return sum
}

// foldExitedIO adds an exiting task's counts to its group's; the caller
// holds tg.signalMu and takes the task off tg.tasks in the same section.
func (tg *ThreadGroup) foldExitedIO(t *Task) {
	tg.ioCounts.addReaped(&t.ioCounts)
}

// addReaped folds other's counts into c: an exited thread's into its
// group's, and a reaped child's group totals (all its threads have
// exited by then) into its parent's, as wait(2) does on Linux: a process's /proc/[pid]/io includes the children it has waited
// for (and, through theirs, their own reaped descendants), never those
// still running or unwaited.
func (c *IOCounts) addReaped(child *IOCounts) {
	c.ReadBytes.Add(child.ReadBytes.Load())
	c.WriteBytes.Add(child.WriteBytes.Load())
	c.ReadCalls.Add(child.ReadCalls.Load())
	c.WriteCalls.Add(child.WriteCalls.Load())
}
