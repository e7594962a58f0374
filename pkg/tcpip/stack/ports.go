package stack

import (
	"sync"

	"carapace.dev/carapace/pkg/tcpip"
)

// Ephemeral port range, Linux's default ip_local_port_range.
const (
	FirstEphemeralPort = 32768
	LastEphemeralPort  = 60999
)

// PortFlags are the sharing options a reservation was made with.
type PortFlags struct {
	ReuseAddr bool
	ReusePort bool
	// TimeWait marks a reservation held by a TIME-WAIT connection: any
	// SO_REUSEADDR binder may share the port with it.
	TimeWait bool
}

// Reservation is one holder of a port.
type Reservation struct {
	Proto tcpip.TransportProtocolNumber
	Addr  tcpip.Address
	Port  uint16
	Flags PortFlags
	// Dest is the connected peer for reservations made by connect; such
	// reservations only conflict with others to the same peer.
	Dest tcpip.FullAddress
	// Owner identifies the reserving endpoint.
	Owner any
	// Group, if set, names a family that shares the port freely: a
	// listener and the connections it accepted.
	Group any
	// Family is the address length (4 or 16) of the endpoint's network
	// protocol; 0 conflicts with either. Wildcard holders of different
	// families do not conflict: an IPv4 and an IPv6-only listener may
	// share a port, as on Linux.
	Family int
}

type portKey struct {
	proto tcpip.TransportProtocolNumber
	port  uint16
}

// PortManager hands out ports with Linux's bind rules: two holders
// conflict when their addresses overlap (equal, or either is the wildcard)
// unless both set SO_REUSEPORT, or both set SO_REUSEADDR, or one is in
// TIME-WAIT and the other set SO_REUSEADDR.
type PortManager struct {
	stack *Stack
	mu    sync.Mutex
	res   map[portKey][]*Reservation
	hint  uint32
}

func newPortManager(s *Stack) *PortManager {
	return &PortManager{stack: s, res: make(map[portKey][]*Reservation)}
}

func conflicts(a, b *Reservation) bool {
	if a.Group != nil && a.Group == b.Group {
		return false
	}
	if a.Family != 0 && b.Family != 0 && a.Family != b.Family {
		return false
	}
	if a.Addr.Len() != 0 && b.Addr.Len() != 0 && !a.Addr.Unspecified() && !b.Addr.Unspecified() && a.Addr != b.Addr {
		return false
	}
	if a.Dest.Port != 0 && b.Dest.Port != 0 && a.Dest != b.Dest {
		return false
	}
	if a.Flags.ReusePort && b.Flags.ReusePort {
		return false
	}
	if a.Flags.ReuseAddr && (b.Flags.ReuseAddr || b.Flags.TimeWait) {
		return false
	}
	if b.Flags.ReuseAddr && a.Flags.TimeWait {
		return false
	}
	return true
}

func (pm *PortManager) free(r *Reservation) bool {
	for _, o := range pm.res[portKey{r.Proto, r.Port}] {
		if conflicts(r, o) {
			return false
		}
	}
	return true
}

// Reserve takes r.Port, or an ephemeral port if it is 0, and returns the
// reservation (whose Port is then set).
func (pm *PortManager) Reserve(r Reservation) (*Reservation, *tcpip.Error) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	rp := &r
	if r.Port != 0 {
		if !pm.free(rp) {
			return nil, tcpip.ErrPortInUse
		}
		pm.add(rp)
		return rp, nil
	}
	n := uint32(LastEphemeralPort - FirstEphemeralPort + 1)
	start := pm.stack.Rand32() % n
	if pm.hint != 0 {
		start = pm.hint
	}
	for i := uint32(0); i < n; i++ {
		rp.Port = uint16(FirstEphemeralPort + (start+i)%n)
		if pm.free(rp) {
			pm.hint = (start + i + 1) % n
			pm.add(rp)
			return rp, nil
		}
	}
	return nil, tcpip.ErrNoPortAvailable
}

func (pm *PortManager) add(r *Reservation) {
	k := portKey{r.Proto, r.Port}
	pm.res[k] = append(pm.res[k], r)
}

// Release drops a reservation; releasing nil or twice is harmless.
func (pm *PortManager) Release(r *Reservation) {
	if r == nil {
		return
	}
	pm.mu.Lock()
	defer pm.mu.Unlock()
	k := portKey{r.Proto, r.Port}
	list := pm.res[k]
	for i, o := range list {
		if o == r {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(pm.res, k)
	} else {
		pm.res[k] = list
	}
}

// Update changes a held reservation's flags or destination in place, as
// when a connection enters TIME-WAIT or a bound socket connects. It fails
// if the change would conflict with another holder.
func (pm *PortManager) Update(r *Reservation, flags PortFlags, dest tcpip.FullAddress) *tcpip.Error {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	trial := *r
	trial.Flags, trial.Dest = flags, dest
	for _, o := range pm.res[portKey{r.Proto, r.Port}] {
		if o != r && conflicts(&trial, o) {
			return tcpip.ErrPortInUse
		}
	}
	r.Flags, r.Dest = flags, dest
	return nil
}
