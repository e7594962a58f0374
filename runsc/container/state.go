// Package container keeps the record of every container runsc manages: one
// directory per container under the runtime root (--root), holding its
// state.json, replaced atomically, and a lock file that serializes the runsc
// processes acting on it (create, start, kill, delete may race, as when
// containerd and a person both act). Liveness is checked against the
// Sentry's pid and its start time, so a reused pid is never mistaken for a
// running container.
package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"carapace.dev/carapace/runsc/atomicfile"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Status is a container's lifecycle state as the OCI runtime spec names it,
// plus "paused" as runc reports it.
type Status string

// The statuses.
const (
	Creating Status = "creating"
	Created  Status = "created"
	Running  Status = "running"
	Paused   Status = "paused"
	Stopped  Status = "stopped"
)

// State is what runsc records of a container.
type State struct {
	ID          string            `json:"id"`
	Status      Status            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// SentryPid is the host pid of the Sentry, reported as the container's
	// pid (Docker and containerd treat it as the container's init).
	SentryPid int `json:"sentryPid,omitempty"`
	// SentryStart is the Sentry's start time in clock ticks since boot
	// (/proc/PID/stat field 22), telling it apart from a reused pid.
	SentryStart uint64 `json:"sentryStart,omitempty"`
	// GoferPid is the Gofer's host pid.
	GoferPid int `json:"goferPid,omitempty"`
	// Cgroup holds the directories of the host cgroup of the sandbox's
	// processes (resource limits, pause and resume), keyed by cgroup v1
	// controller, or one directory under "" on cgroup v2; empty if none
	// was made.
	Cgroup map[string]string `json:"cgroup,omitempty"`
}

// OCIState is the state the OCI runtime spec defines, as `runsc state`
// prints it.
func (s *State) OCIState() specs.State {
	pid := s.SentryPid
	if s.Status == Stopped {
		pid = 0
	}
	return specs.State{
		Version: specs.Version, ID: s.ID, Status: specs.ContainerState(s.Status),
		Pid: pid, Bundle: s.Bundle, Annotations: s.Annotations,
	}
}

// validID is runc's rule for container IDs.
var validID = regexp.MustCompile(`^[\w+.-]+$`)

// ValidateID rejects IDs that are empty, too long, or could name anything
// but one directory below the root.
func ValidateID(id string) error {
	if id == "" {
		return errors.New("container id must not be empty")
	}
	if len(id) > 1024 || !validID.MatchString(id) || id == "." || id == ".." {
		return fmt.Errorf("invalid container id %q: use letters, digits, '_', '+', '-' and '.'", id)
	}
	return nil
}

// ErrNotExist says no container has the ID.
var ErrNotExist = errors.New("container does not exist")

// ErrExist says a container already has the ID.
var ErrExist = errors.New("container already exists")

// Store is the runtime root directory.
type Store struct {
	Root string
}

func (s Store) dir(id string) string { return filepath.Join(s.Root, id) }

// StateDir is the directory that belongs to container id (its state, its
// lock, later its control socket).
func (s Store) StateDir(id string) string { return s.dir(id) }

// ExitStatusPath is the file the Sentry writes init's wait status to.
func (s Store) ExitStatusPath(id string) string { return filepath.Join(s.dir(id), "exit-status") }

// ExitStatus reads the wait status the Sentry recorded when init exited.
func (s Store) ExitStatus(id string) (uint32, bool) {
	data, err := os.ReadFile(s.ExitStatusPath(id))
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(v), true
}

// Create records a new container, failing with ErrExist if the ID is
// taken. The container is locked on return; call the unlock function once
// its state is complete.
func (s Store) Create(st *State) (unlock func(), err error) {
	if err := ValidateID(st.ID); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.Root, 0o711); err != nil {
		return nil, fmt.Errorf("creating the runtime root: %w", err)
	}
	if err := os.Mkdir(s.dir(st.ID), 0o711); errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%w: %q", ErrExist, st.ID)
	} else if err != nil {
		return nil, fmt.Errorf("creating the state of %q: %w", st.ID, err)
	}
	unlock, err = s.Lock(st.ID)
	if err != nil {
		os.RemoveAll(s.dir(st.ID))
		return nil, err
	}
	if err := s.save(st); err != nil {
		unlock()
		os.RemoveAll(s.dir(st.ID))
		return nil, err
	}
	return unlock, nil
}

// Lock takes the container's exclusive lock, waiting for other runsc
// processes to release it.
func (s Store) Lock(id string) (unlock func(), err error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.dir(id), "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q", ErrNotExist, id)
	} else if err != nil {
		return nil, fmt.Errorf("locking %q: %w", id, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %q: %w", id, err)
	}
	return func() { f.Close() }, nil // closing releases the flock
}

// Save writes st. The caller holds the container's lock (from Create or
// Lock).
func (s Store) Save(st *State) error { return s.save(st) }

func (s Store) save(st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(s.dir(st.ID), "state.json"), data, 0o600)
}

// Load reads a container's state, with a running or created container
// whose Sentry has died reported as stopped.
func (s Store) Load(id string) (*State, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(s.dir(id), "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q", ErrNotExist, id)
	} else if err != nil {
		return nil, fmt.Errorf("reading the state of %q: %w", id, err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("the state of %q is corrupt: %w", id, err)
	}
	if st.ID != id {
		return nil, fmt.Errorf("the state of %q names container %q", id, st.ID)
	}
	if (st.Status == Created || st.Status == Running || st.Status == Paused) && !Alive(st.SentryPid, st.SentryStart) {
		st.Status = Stopped
	}
	return &st, nil
}

// Update locks the container, loads it, applies change and saves the result.
func (s Store) Update(id string, change func(*State) error) error {
	unlock, err := s.Lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := s.Load(id)
	if err != nil {
		return err
	}
	if err := change(st); err != nil {
		return err
	}
	return s.save(st)
}

// Remove deletes the container's record. The caller holds its lock or
// knows no one else can.
func (s Store) Remove(id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if err := os.RemoveAll(s.dir(id)); err != nil {
		return fmt.Errorf("removing the state of %q: %w", id, err)
	}
	return nil
}

// List returns every container's state, sorted by ID. A record that cannot
// be read is reported in the error, after the others.
func (s Store) List() ([]*State, error) {
	entries, err := os.ReadDir(s.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("listing %s: %w", s.Root, err)
	}
	var out []*State
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || ValidateID(e.Name()) != nil {
			continue
		}
		st, err := s.Load(e.Name())
		if errors.Is(err, ErrNotExist) {
			continue // being created or removed right now
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, errors.Join(errs...)
}

// ProcessStartTime returns a process's start time in clock ticks since
// boot (field 22 of /proc/PID/stat).
func ProcessStartTime(pid int) (uint64, error) {
	_, start, err := procStat(pid)
	return start, err
}

// procStat returns the state letter (field 3) and start time (field 22)
// of /proc/PID/stat.
func procStat(pid int) (byte, uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it start after the last ')'.
	end := strings.LastIndexByte(string(data), ')')
	if end < 0 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(data[end+1:]))
	// fields[0] is field 3, so field 22 is fields[19].
	if len(fields) < 20 || len(fields[0]) != 1 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	return fields[0][0], start, err
}

// Alive reports whether pid is still the process that started at start
// and has not exited (a zombie keeps its /proc entry but runs nothing).
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	state, got, err := procStat(pid)
	return err == nil && state != 'Z' && got == start
}
