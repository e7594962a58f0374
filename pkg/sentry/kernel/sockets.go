package kernel

import (
	"sync"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// SocketProvider creates the sockets of one address family. Providers are
// registered per kernel (each sandbox has its own network stack), before
// the first task runs.
type SocketProvider interface {
	// Socket returns a new socket file, or EPROTONOSUPPORT/ESOCKTNOSUPPORT
	// for a type or protocol the family does not have. stype has
	// SOCK_NONBLOCK and SOCK_CLOEXEC already removed.
	Socket(t *Task, stype, protocol int) (*vfs.FileDescription, error)
	// Pair returns two connected sockets, or EOPNOTSUPP.
	Pair(t *Task, stype, protocol int) (*vfs.FileDescription, *vfs.FileDescription, error)
}

// socketProviders is the per-kernel registry; it is written at boot and
// read on every socket(2), hence the RWMutex rather than k.mu.
type socketProviders struct {
	mu        sync.RWMutex
	providers map[int]SocketProvider
}

// RegisterSocketProvider makes p the provider for family (AF_UNIX,
// AF_INET, AF_INET6, AF_NETLINK …), replacing any earlier one.
func (k *Kernel) RegisterSocketProvider(family int, p SocketProvider) {
	k.sockets.mu.Lock()
	defer k.sockets.mu.Unlock()
	if k.sockets.providers == nil {
		k.sockets.providers = make(map[int]SocketProvider)
	}
	k.sockets.providers[family] = p
}

// SocketProvider returns the provider for family, or EAFNOSUPPORT.
func (k *Kernel) SocketProvider(family int) (SocketProvider, error) {
	k.sockets.mu.RLock()
	defer k.sockets.mu.RUnlock()
	p, ok := k.sockets.providers[family]
	if !ok {
		return nil, unix.EAFNOSUPPORT
	}
	return p, nil
}
