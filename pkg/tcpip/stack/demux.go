package stack

import (
	"hash/maphash"
	"sync"

	"carapace.dev/carapace/pkg/tcpip"
)

type demuxKey struct {
	proto tcpip.TransportProtocolNumber
	// family is the address length of the endpoint's network protocol,
	// so that IPv4 and IPv6 wildcard bindings of a port stay apart.
	family int
	id     TransportEndpointID
}

// NetworkProtocolEndpoint is implemented by transport endpoints to say
// which network protocol they run on.
type NetworkProtocolEndpoint interface {
	NetworkProtocolNumber() tcpip.NetworkProtocolNumber
}

type demuxEntry struct {
	eps       []TransportEndpoint
	reusePort bool
}

// demuxer finds the endpoint for an inbound packet: the exact 4-tuple
// first, then the local address and port, then the port on the wildcard
// address.
type demuxer struct {
	seed maphash.Seed
	mu   sync.RWMutex
	m    map[demuxKey]*demuxEntry
}

func (d *demuxer) init() {
	d.seed = maphash.MakeSeed()
	d.m = make(map[demuxKey]*demuxEntry)
}

func (d *demuxer) register(proto tcpip.TransportProtocolNumber, family int, id TransportEndpointID, ep TransportEndpoint, reusePort bool) *tcpip.Error {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := demuxKey{proto, family, id}
	e := d.m[k]
	if e == nil {
		d.m[k] = &demuxEntry{eps: []TransportEndpoint{ep}, reusePort: reusePort}
		return nil
	}
	if !e.reusePort || !reusePort {
		return tcpip.ErrPortInUse
	}
	e.eps = append(e.eps, ep)
	return nil
}

func (d *demuxer) unregister(proto tcpip.TransportProtocolNumber, family int, id TransportEndpointID, ep TransportEndpoint) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := demuxKey{proto, family, id}
	e := d.m[k]
	if e == nil {
		return
	}
	for i, x := range e.eps {
		if x == ep {
			e.eps = append(e.eps[:i:i], e.eps[i+1:]...)
			break
		}
	}
	if len(e.eps) == 0 {
		delete(d.m, k)
	}
}

func (d *demuxer) candidates(id TransportEndpointID) [3]TransportEndpointID {
	return [3]TransportEndpointID{
		id,
		{LocalPort: id.LocalPort, LocalAddress: id.LocalAddress},
		{LocalPort: id.LocalPort},
	}
}

func (d *demuxer) lookup(proto tcpip.TransportProtocolNumber, id TransportEndpointID) TransportEndpoint {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, c := range d.candidates(id) {
		if e := d.m[demuxKey{proto, id.LocalAddress.Len(), c}]; e != nil {
			if len(e.eps) == 1 {
				return e.eps[0]
			}
			// SO_REUSEPORT: spread flows over the group by 4-tuple hash.
			h := maphash.Comparable(d.seed, id)
			return e.eps[h%uint64(len(e.eps))]
		}
	}
	return nil
}

// lookupAll returns every endpoint bound to the port that should see a
// broadcast: those on the wildcard address and on the destination itself.
func (d *demuxer) lookupAll(proto tcpip.TransportProtocolNumber, id TransportEndpointID) []TransportEndpoint {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []TransportEndpoint
	c := d.candidates(id)
	for _, k := range c[1:] {
		if e := d.m[demuxKey{proto, id.LocalAddress.Len(), k}]; e != nil {
			out = append(out, e.eps...)
		}
	}
	return out
}

// all returns every endpoint registered for proto.
func (d *demuxer) all(proto tcpip.TransportProtocolNumber) []TransportEndpoint {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []TransportEndpoint
	for k, e := range d.m {
		if k.proto == proto {
			out = append(out, e.eps...)
		}
	}
	return out
}
