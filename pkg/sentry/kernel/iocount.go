package kernel

import "sync/atomic"

// IOCounts are a thread group's read/write-family syscall totals, as
// /proc/[pid]/io reports them (rchar, wchar, syscr, syscw). They belong
// to the group, so threads that exited still count, and reaped children
// are added at wait (addReaped). As on Linux (measured on 6.18), only
// the read/write family counts, on sockets too; send(2)/recv(2) and
// their msg/mmsg forms do not. Atomics, so the I/O paths count without
// a lock and without allocating.
type IOCounts struct {
	// ReadBytes and WriteBytes are rchar and wchar: bytes moved by
	// read-family and write-family syscalls, whatever the file.
	ReadBytes, WriteBytes atomic.Uint64
	// ReadCalls and WriteCalls are syscr and syscw: how many such calls.
	ReadCalls, WriteCalls atomic.Uint64
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

// IOCounts returns the group's I/O counters.
func (tg *ThreadGroup) IOCounts() *IOCounts { return &tg.ioCounts }

// addReaped folds a reaped child's totals into c, as wait(2) does on
// Linux: a process's /proc/[pid]/io includes the children it has waited
// for (and, through theirs, their own reaped descendants), never those
// still running or unwaited.
func (c *IOCounts) addReaped(child *IOCounts) {
	c.ReadBytes.Add(child.ReadBytes.Load())
	c.WriteBytes.Add(child.WriteBytes.Load())
	c.ReadCalls.Add(child.ReadCalls.Load())
	c.WriteCalls.Add(child.WriteCalls.Load())
}
