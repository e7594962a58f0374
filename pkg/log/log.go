// Package log is the leveled logger every Carapace package writes through.
// One process-wide Logger; output is text or JSON lines, and Debug lines are
// dropped unless the level allows them. Safe for concurrent use.
package log

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Level orders messages by importance.
type Level int32

const (
	// Warning is for things that are wrong but survivable.
	Warning Level = iota
	// Info is the default level: lifecycle events.
	Info
	// Debug is verbose tracing.
	Debug
)

func (l Level) String() string {
	switch l {
	case Warning:
		return "W"
	case Info:
		return "I"
	default:
		return "D"
	}
}

// Format selects the output encoding.
type Format int

const (
	// Text lines: "I1123 19:00:00.000000 pid message".
	Text Format = iota
	// JSON lines: {"msg":…,"level":…,"time":…}.
	JSON
)

// ParseFormat converts a --log-format value.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "text", "":
		return Text, nil
	case "json", "json-k8s":
		return JSON, nil
	}
	return Text, fmt.Errorf("invalid log format %q: want text or json", s)
}

type sink struct {
	mu     sync.Mutex
	w      io.Writer
	format Format
}

var (
	level   atomic.Int32
	current atomic.Pointer[sink]
)

func init() {
	level.Store(int32(Info))
	current.Store(&sink{w: os.Stderr})
}

// SetTarget directs all further output to w in the given format.
func SetTarget(w io.Writer, f Format) { current.Store(&sink{w: w, format: f}) }

// SetLevel sets the most verbose level that is written.
func SetLevel(l Level) { level.Store(int32(l)) }

// IsLogging reports whether messages at l are written; callers use it to
// skip building expensive arguments.
func IsLogging(l Level) bool { return int32(l) <= level.Load() }

// Warningf logs at Warning.
func Warningf(format string, args ...any) { emit(Warning, format, args) }

// Infof logs at Info.
func Infof(format string, args ...any) { emit(Info, format, args) }

// Debugf logs at Debug.
func Debugf(format string, args ...any) { emit(Debug, format, args) }

func emit(l Level, format string, args []any) {
	if !IsLogging(l) {
		return
	}
	s := current.Load()
	msg := fmt.Sprintf(format, args...)
	now := time.Now()
	var line []byte
	switch s.format {
	case JSON:
		line, _ = json.Marshal(struct {
			Msg   string `json:"msg"`
			Level string `json:"level"`
			Time  string `json:"time"`
		}{msg, map[Level]string{Warning: "warning", Info: "info", Debug: "debug"}[l], now.Format(time.RFC3339Nano)})
		line = append(line, '\n')
	default:
		line = fmt.Appendf(nil, "%s%s %7d %s\n", l, now.Format("0102 15:04:05.000000"), os.Getpid(), msg)
	}
	s.mu.Lock()
	_, _ = s.w.Write(line)
	s.mu.Unlock()
}
