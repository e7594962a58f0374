package kernel

import (
	"fmt"
	"sort"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// This file is the kernel's face to the runtime outside the sandbox
// (runsc kill, ps, exec, events): operations that act on processes by PID
// from no task's point of view.

// ProcessWithID returns the live or zombie process with the given PID,
// or nil.
func (k *Kernel) ProcessWithID(pid ThreadID) *ThreadGroup {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.groups[pid]
}

// outsideSignal is a signal from the runtime: it comes from outside the
// sandbox's PID namespace, so the sender's PID reads as 0 (SI_USER).
func outsideSignal(sig unix.Signal) (*linux.SignalInfo, error) {
	if !linux.Signal(sig).IsValid() {
		return nil, fmt.Errorf("signal %d: %w", sig, unix.EINVAL)
	}
	return &linux.SignalInfo{Signo: int32(sig), Code: linux.SI_USER}, nil
}

// SignalProcess sends sig to process pid from outside the sandbox. A
// process that has exited (a zombie) or never existed is ESRCH.
func (k *Kernel) SignalProcess(pid ThreadID, sig unix.Signal) error {
	info, err := outsideSignal(sig)
	if err != nil {
		return err
	}
	k.mu.Lock()
	tg := k.groups[pid]
	alive := tg != nil && !tg.zombie
	k.mu.Unlock()
	if !alive {
		return fmt.Errorf("process %d: %w", pid, unix.ESRCH)
	}
	return tg.SendSignal(info)
}

// SignalAllProcesses sends sig to every live process of the sandbox
// (runc kill --all). It is ESRCH if there is none.
func (k *Kernel) SignalAllProcesses(sig unix.Signal) error {
	info, err := outsideSignal(sig)
	if err != nil {
		return err
	}
	k.mu.Lock()
	var targets []*ThreadGroup
	for _, tg := range k.groups {
		if !tg.zombie {
			targets = append(targets, tg)
		}
	}
	k.mu.Unlock()
	if len(targets) == 0 {
		return fmt.Errorf("no process to signal: %w", unix.ESRCH)
	}
	for _, tg := range targets {
		sendInfo := *info
		tg.SendSignal(&sendInfo)
	}
	return nil
}

// ProcessInfo describes one process for `runsc ps`.
type ProcessInfo struct {
	PID     ThreadID
	PPID    ThreadID
	UID     auth.UID
	Name    string
	Argv    []string
	Threads int
	Zombie  bool
	// CPU is the time the process's threads have used.
	CPU CPUUsage
}

// Processes lists the sandbox's processes, zombies included, by PID.
func (k *Kernel) Processes() []ProcessInfo {
	k.mu.Lock()
	groups := make([]*ThreadGroup, 0, len(k.groups))
	ppids := make(map[*ThreadGroup]ThreadID, len(k.groups))
	zombies := make(map[*ThreadGroup]bool, len(k.groups))
	for _, tg := range k.groups {
		groups = append(groups, tg)
		if tg.parent != nil {
			ppids[tg] = tg.parent.pid
		}
		zombies[tg] = tg.zombie
	}
	k.mu.Unlock()
	out := make([]ProcessInfo, 0, len(groups))
	for _, tg := range groups {
		pi := ProcessInfo{PID: tg.pid, PPID: ppids[tg], Zombie: zombies[tg]}
		tg.signalMu.Lock()
		pi.Threads = len(tg.tasks)
		var leader *Task
		for _, t := range tg.tasks {
			if t.tid == tg.pid {
				leader = t
			}
		}
		if leader == nil && len(tg.tasks) > 0 {
			leader = tg.tasks[0]
		}
		tg.signalMu.Unlock()
		if leader != nil {
			pi.UID = leader.Credentials().RealUID
			pi.Name = leader.Name()
			if img := leader.Image(); img != nil {
				pi.Argv = append([]string(nil), img.Argv...)
			}
		}
		pi.CPU = tg.CPUUsage()
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// ThreadCount returns the number of live tasks; ProcessCount (in
// thread_group.go) the processes.
func (k *Kernel) ThreadCount() int { return k.TaskCount() }
