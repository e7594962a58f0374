package kernel

import (
	"sync"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// UTSNamespace holds a host and domain name that unshare(CLONE_NEWUTS)
// gave a set of tasks. Tasks without one (nil) are in the sandbox's
// initial namespace, whose names are the kernel's.
type UTSNamespace struct {
	mu         sync.Mutex
	hostname   string
	domainname string
}

// UTSNames returns the host and domain name the task sees.
func (t *Task) UTSNames() (hostname, domainname string) {
	ns := t.uts.Load()
	if ns == nil {
		return t.k.Hostname(), t.k.Domainname()
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return ns.hostname, ns.domainname
}

// SetUTSNames changes the host name (sethostname) or, with domain, the
// domain name (setdomainname) of the task's namespace.
func (t *Task) SetUTSName(name string, domain bool) {
	ns := t.uts.Load()
	if ns == nil {
		k := t.k
		k.mu.Lock()
		if domain {
			k.domainname = name
		} else {
			k.hostname = name
		}
		k.mu.Unlock()
		return
	}
	ns.mu.Lock()
	if domain {
		ns.domainname = name
	} else {
		ns.hostname = name
	}
	ns.mu.Unlock()
}

// newUTSNamespace copies the task's current names into a fresh namespace.
func (t *Task) newUTSNamespace() *UTSNamespace {
	h, d := t.UTSNames()
	return &UTSNamespace{hostname: h, domainname: d}
}

// unshareableFlags are what Unshare accepts: the namespaces the Sentry
// has (UTS, mount; IPC, which holds no objects yet, so a new one is empty
// just as the old one is), unsharing files and filesystem attributes, and the
// flags that are no-ops for a single-threaded caller.
const unshareableFlags = linux.CLONE_NEWUTS | linux.CLONE_NEWIPC | linux.CLONE_NEWNS | linux.CLONE_FILES | linux.CLONE_FS |
	linux.CLONE_SYSVSEM | linux.CLONE_THREAD | linux.CLONE_SIGHAND | linux.CLONE_VM | linux.CLONE_NEWPID

// Unshare implements unshare(2).
func (t *Task) Unshare(flags uint64) error {
	if flags&^unshareableFlags != 0 {
		if flags&(linux.CLONE_NEWUSER|linux.CLONE_NEWPID|linux.CLONE_NEWNET|
			linux.CLONE_NEWCGROUP|linux.CLONE_NEWTIME) != 0 && flags&^(unshareableFlags|
			linux.CLONE_NEWUSER|linux.CLONE_NEWPID|linux.CLONE_NEWNET|
			linux.CLONE_NEWCGROUP|linux.CLONE_NEWTIME) == 0 &&
			!t.Credentials().HasCapability(auth.CAP_SYS_ADMIN) {
			return unix.EPERM
		}
		// Namespaces the Sentry does not have.
		return unix.EINVAL
	}
	// Unsharing the thread group, handlers or memory is only possible
	// (as a no-op) for a process of one thread.
	if flags&(linux.CLONE_THREAD|linux.CLONE_SIGHAND|linux.CLONE_VM) != 0 {
		t.tg.signalMu.Lock()
		n := len(t.tg.tasks)
		t.tg.signalMu.Unlock()
		if n > 1 {
			return unix.EINVAL
		}
	}
	if flags&(linux.CLONE_NEWUTS|linux.CLONE_NEWIPC|linux.CLONE_NEWNS|linux.CLONE_NEWPID) != 0 && !t.Credentials().HasCapability(auth.CAP_SYS_ADMIN) {
		return unix.EPERM
	}
	if flags&linux.CLONE_NEWPID != 0 {
		if err := t.unsharePIDNamespace(); err != nil {
			return err
		}
	}
	if flags&linux.CLONE_NEWNS != 0 && t.fsContext != nil {
		// A new mount namespace comes with its own filesystem context.
		t.unshareMountNamespace(t)
		flags &^= linux.CLONE_FS
	}
	if flags&linux.CLONE_NEWUTS != 0 {
		t.uts.Store(t.newUTSNamespace())
	}
	if flags&linux.CLONE_FILES != 0 {
		fdt := t.fdTable.Fork()
		t.k.mu.Lock()
		old := t.fdTable
		t.fdTable = fdt
		t.k.mu.Unlock()
		old.DecRef(t)
	}
	if flags&linux.CLONE_FS != 0 && t.fsContext != nil {
		fsc := t.fsContext.Fork()
		t.k.mu.Lock()
		old := t.fsContext
		t.fsContext = fsc
		t.k.mu.Unlock()
		old.DecRef(t)
	}
	return nil
}
