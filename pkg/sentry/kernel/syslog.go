package kernel

import (
	"fmt"
	"strings"
	"sync"
)

// The kernel log that syslog(2) and dmesg read: the Sentry's own boot
// messages (DESIGN.md §4), in the format of Linux's ring buffer as
// syslog(2) returns it: "<level>[seconds.micros] text\n".

// bootMessages are the Sentry's boot log, one line each.
var bootMessages = []string{
	"Starting Carapace...",
	"Hatching a fresh shell for the application...",
	"Counting the scutes on the carapace...",
	"Teaching the Sentry to answer every syscall politely...",
	"Asking the Gofer to fetch the root filesystem...",
	"Tucking the host kernel safely underneath...",
	"Ready!",
}

// kernelLog is the log buffer; readers consume from readOff.
type kernelLog struct {
	mu      sync.Mutex
	buf     []byte
	readOff int
}

// kernelLogSize is what SYSLOG_ACTION_SIZE_BUFFER reports (Linux's
// default 1 << CONFIG_LOG_BUF_SHIFT with shift 17).
const kernelLogSize = 1 << 17

func newKernelLog() *kernelLog {
	var b strings.Builder
	for i, m := range bootMessages {
		// Info level (6), a few hundredths of a second apart.
		fmt.Fprintf(&b, "<6>[%5d.%06d] %s\n", 0, i*20113, m)
	}
	return &kernelLog{buf: []byte(b.String())}
}

// SyslogReadAll returns up to n of the most recent bytes of the log
// (SYSLOG_ACTION_READ_ALL), and with clear empties it (READ_CLEAR).
func (k *Kernel) SyslogReadAll(n int, clear bool) []byte {
	l := k.log()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf
	if len(b) > n {
		b = b[len(b)-n:]
	}
	out := append([]byte(nil), b...)
	if clear {
		l.buf, l.readOff = nil, 0
	}
	return out
}

// SyslogRead consumes up to n unread bytes (SYSLOG_ACTION_READ).
func (k *Kernel) SyslogRead(n int) []byte {
	l := k.log()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf[l.readOff:]
	if len(b) > n {
		b = b[:n]
	}
	l.readOff += len(b)
	return append([]byte(nil), b...)
}

// SyslogUnread is SYSLOG_ACTION_SIZE_UNREAD.
func (k *Kernel) SyslogUnread() int {
	l := k.log()
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buf) - l.readOff
}

// SyslogClear empties the log (SYSLOG_ACTION_CLEAR).
func (k *Kernel) SyslogClear() {
	l := k.log()
	l.mu.Lock()
	l.buf, l.readOff = nil, 0
	l.mu.Unlock()
}

// SyslogBufferSize is SYSLOG_ACTION_SIZE_BUFFER.
func (k *Kernel) SyslogBufferSize() int { return kernelLogSize }

func (k *Kernel) log() *kernelLog {
	k.logOnce.Do(func() { k.klog = newKernelLog() })
	return k.klog
}
