// Package control is the protocol between short-lived runsc commands
// (start, exec, kill, wait, ps, events) and the Sentry of a running
// sandbox. It owns the message types, their validation, and both ends of
// the transport: a SOCK_SEQPACKET unix socket in the container's state
// directory, one request per connection, each request and response one
// JSON datagram, with the stdio of an exec'd process passed as SCM_RIGHTS
// descriptors beside the request.
//
// The Sentry treats every request as untrusted: Decode bounds the message
// size, the number of descriptors, every list and string, and rejects
// unknown methods, versions and fields before anything acts on them.
package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"carapace.dev/carapace/runsc/specutils"
	"golang.org/x/sys/unix"
)

// Version is the protocol version every message carries. A peer speaking
// another version is refused, so a runsc binary upgraded while a sandbox
// runs fails clearly instead of misreading requests.
const Version = 1

// Limits on what one request may carry.
const (
	// MaxMessageSize bounds one datagram (a request or a response).
	MaxMessageSize = 256 << 10
	// MaxArgs bounds argv and envv of an exec.
	MaxArgs = 4096
	// MaxStringLen bounds any single string.
	MaxStringLen = 32 << 10
	// MaxGroups bounds the supplementary groups of an exec.
	MaxGroups = 64
	// StdioFDs is how many descriptors an exec request carries: the
	// process's stdin, stdout and stderr.
	StdioFDs = 3
)

// Method names what a request asks.
type Method string

// The methods.
const (
	// MethodStart starts the container's init process (created by boot).
	MethodStart Method = "start"
	// MethodExec creates and starts a new process in the sandbox.
	MethodExec Method = "exec"
	// MethodSignal sends a signal to one process or to all of them.
	MethodSignal Method = "signal"
	// MethodWait waits for a process (0: init) to exit.
	MethodWait Method = "wait"
	// MethodProcesses lists the sandbox's processes.
	MethodProcesses Method = "ps"
	// MethodStats reports resource usage.
	MethodStats Method = "stats"
)

// Request is one message from runsc to the Sentry.
type Request struct {
	Version int          `json:"version"`
	Method  Method       `json:"method"`
	Exec    *ExecArgs    `json:"exec,omitempty"`
	Signal  *SignalArgs  `json:"signal,omitempty"`
	Wait    *WaitArgs    `json:"wait,omitempty"`
	Network *NetworkArgs `json:"network,omitempty"` // network.go
}

// ExecArgs describe a process to start in a running sandbox. Its stdio
// are the three descriptors sent with the request.
type ExecArgs struct {
	Args           []string `json:"args"`
	Env            []string `json:"env,omitempty"`
	Cwd            string   `json:"cwd,omitempty"`
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGids []uint32 `json:"additionalGids,omitempty"`
	// Capabilities are the names (CAP_…) of the bounding, effective,
	// permitted, inheritable and ambient sets; nil sets keep the
	// defaults for the user (all for root, none otherwise).
	Capabilities *Capabilities `json:"capabilities,omitempty"`
	// Terminal says the descriptors are a terminal the process
	// controls.
	Terminal bool `json:"terminal,omitempty"`
	// NoNewPrivs starts the process with no_new_privs set (OCI
	// process.noNewPrivileges, runc exec --no-new-privs): set-ID bits and
	// file capabilities of what it runs are then ignored.
	NoNewPrivs bool `json:"noNewPrivs,omitempty"`
}

// Capabilities are capability names per set, as in the OCI spec.
type Capabilities struct {
	Bounding    []string `json:"bounding,omitempty"`
	Effective   []string `json:"effective,omitempty"`
	Permitted   []string `json:"permitted,omitempty"`
	Inheritable []string `json:"inheritable,omitempty"`
	Ambient     []string `json:"ambient,omitempty"`
}

// SignalArgs name a signal and its target.
type SignalArgs struct {
	Signo int `json:"signo"`
	// PID is the sandbox PID to signal; 0 means the init process.
	PID int32 `json:"pid,omitempty"`
	// All signals every process in the sandbox (runc kill --all).
	All bool `json:"all,omitempty"`
}

// WaitArgs name the process to wait for.
type WaitArgs struct {
	// PID is a process started by exec, or 0 for init.
	PID int32 `json:"pid,omitempty"`
}

// Response is the Sentry's answer. Error is empty on success.
type Response struct {
	Version int    `json:"version"`
	Error   string `json:"error,omitempty"`
	// Errno is set when the failure has a Linux errno (ESRCH for a
	// process that does not exist), so runsc can phrase it as runc does.
	Errno int `json:"errno,omitempty"`
	// PID is the sandbox PID of an exec'd process.
	PID int32 `json:"pid,omitempty"`
	// WaitStatus is the wait(2) status of a waited-for process.
	WaitStatus *uint32 `json:"waitStatus,omitempty"`
	// Processes answers MethodProcesses.
	Processes []Process `json:"processes,omitempty"`
	// Stats answers MethodStats.
	Stats *Stats `json:"stats,omitempty"`
}

// Process is one process of the sandbox.
type Process struct {
	PID  int32    `json:"pid"`
	PPID int32    `json:"ppid"`
	UID  uint32   `json:"uid"`
	Name string   `json:"name"`
	Args []string `json:"args,omitempty"`
	// CPUTime is the user plus system time the process has used, in
	// nanoseconds (its threads, live and exited).
	CPUTime int64 `json:"cpuTime,omitempty"`
	// Started is when the process started, in Unix nanoseconds, when the
	// Sentry knows (init and exec'd processes); zero otherwise.
	Started int64 `json:"started,omitempty"`
}

// Stats is the sandbox's resource usage as the Sentry sees it.
type Stats struct {
	Processes   int    `json:"processes"`
	Threads     int    `json:"threads"`
	MemoryBytes uint64 `json:"memoryBytes"`
}

// Encode marshals a request or response, failing if it would exceed
// MaxMessageSize.
func Encode(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxMessageSize {
		return nil, fmt.Errorf("control message of %d bytes exceeds %d: %w", len(data), MaxMessageSize, unix.EMSGSIZE)
	}
	return data, nil
}

// strictUnmarshal decodes one JSON value with no unknown fields and
// nothing after it.
func strictUnmarshal(data []byte, v any) error {
	if len(data) > MaxMessageSize {
		return fmt.Errorf("message of %d bytes exceeds %d: %w", len(data), MaxMessageSize, unix.EMSGSIZE)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed control message: %w", err)
	}
	if dec.More() {
		return errors.New("malformed control message: trailing data")
	}
	return nil
}

// DecodeRequest parses and validates an untrusted request that arrived
// with nfds descriptors.
func DecodeRequest(data []byte, nfds int) (*Request, error) {
	var r Request
	if err := strictUnmarshal(data, &r); err != nil {
		return nil, err
	}
	if err := r.validate(nfds); err != nil {
		return nil, err
	}
	return &r, nil
}

// DecodeResponse parses a response.
func DecodeResponse(data []byte) (*Response, error) {
	var r Response
	if err := strictUnmarshal(data, &r); err != nil {
		return nil, err
	}
	if r.Version != Version {
		return nil, fmt.Errorf("control protocol version %d, this runsc speaks %d", r.Version, Version)
	}
	return &r, nil
}

// wantFDs is how many descriptors a method carries.
func (m Method) wantFDs() int {
	if m == MethodExec {
		return StdioFDs
	}
	return 0
}

func (r *Request) validate(nfds int) error {
	if r.Version != Version {
		return fmt.Errorf("control protocol version %d, the Sentry speaks %d", r.Version, Version)
	}
	switch r.Method {
	case MethodStart, MethodExec, MethodSignal, MethodWait, MethodProcesses, MethodStats:
	case MethodNetwork:
		if r.Network == nil || r.Exec != nil || r.Signal != nil || r.Wait != nil {
			return fmt.Errorf("%s request with the wrong arguments", r.Method)
		}
		return r.Network.validate(nfds)
	default:
		return fmt.Errorf("unknown control method %q", truncate(string(r.Method)))
	}
	if want := r.Method.wantFDs(); nfds != want {
		return fmt.Errorf("%s carries %d descriptors, want %d", r.Method, nfds, want)
	}
	// Exactly the argument block of the method, nothing else.
	if (r.Exec != nil) != (r.Method == MethodExec) ||
		(r.Signal != nil) != (r.Method == MethodSignal) ||
		(r.Wait != nil) != (r.Method == MethodWait) || r.Network != nil {
		return fmt.Errorf("%s request with the wrong arguments", r.Method)
	}
	switch r.Method {
	case MethodExec:
		return r.Exec.validate()
	case MethodSignal:
		s := r.Signal
		if s.Signo < 1 || s.Signo > 64 {
			return fmt.Errorf("invalid signal %d", s.Signo)
		}
		if s.PID < 0 || (s.All && s.PID != 0) {
			return fmt.Errorf("invalid signal target pid %d (all=%v)", s.PID, s.All)
		}
	case MethodWait:
		if r.Wait.PID < 0 {
			return fmt.Errorf("invalid pid %d", r.Wait.PID)
		}
	}
	return nil
}

func (e *ExecArgs) validate() error {
	if len(e.Args) == 0 {
		return errors.New("exec: no arguments")
	}
	if len(e.Args) > MaxArgs || len(e.Env) > MaxArgs {
		return fmt.Errorf("exec: more than %d arguments or environment entries", MaxArgs)
	}
	if len(e.AdditionalGids) > MaxGroups {
		return fmt.Errorf("exec: more than %d additional groups", MaxGroups)
	}
	for _, s := range e.Args {
		if err := checkString("argument", s); err != nil {
			return err
		}
	}
	if e.Args[0] == "" {
		return errors.New("exec: empty program name")
	}
	for _, s := range e.Env {
		if err := checkString("environment entry", s); err != nil {
			return err
		}
		if !strings.Contains(s, "=") {
			return fmt.Errorf("exec: environment entry %q has no '='", truncate(s))
		}
	}
	if err := checkString("cwd", e.Cwd); err != nil {
		return err
	}
	if e.Cwd != "" && !path.IsAbs(e.Cwd) {
		return fmt.Errorf("exec: cwd %q is not absolute", truncate(e.Cwd))
	}
	if c := e.Capabilities; c != nil {
		for _, set := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
			if len(set) > 64 {
				return errors.New("exec: too many capabilities")
			}
			for _, name := range set {
				if _, err := CapabilityByName(name); err != nil {
					return fmt.Errorf("exec: %w", err)
				}
			}
		}
	}
	return nil
}

func checkString(what, s string) error {
	if len(s) > MaxStringLen {
		return fmt.Errorf("exec: %s of %d bytes exceeds %d", what, len(s), MaxStringLen)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("exec: %s holds a NUL byte", what)
	}
	return nil
}

// truncate keeps error messages about hostile input short.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// CapabilityByName returns the number of a capability named as the OCI
// spec names it ("CAP_NET_ADMIN").
func CapabilityByName(name string) (int, error) {
	if n, ok := specutils.CapabilityNames[name]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("unknown capability %q", truncate(name))
}
