package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// MethodNetwork hands the Sentry the interfaces of its network namespace
// that netstack takes over: one AF_PACKET socket per link, sent as
// SCM_RIGHTS in the order of NetworkArgs.Links, with the configuration the
// runsc CLI read from the host kernel. The CLI sends it because only it
// has the privileges to open packet sockets once Docker or CNI has set the
// veth up, which happens after the Sentry dropped its own.
const MethodNetwork Method = "network"

// Limits on a network request.
const (
	// MaxLinks bounds the interfaces of one request (and so its
	// descriptors).
	MaxLinks = 8
	// MaxLinkAddresses bounds the addresses of one interface.
	MaxLinkAddresses = 64
	// MaxLinkRoutes bounds the routes through one interface.
	MaxLinkRoutes = 256
	// MaxLinkNameLen is IFNAMSIZ less the NUL.
	MaxLinkNameLen = 15
	// MinMTU and MaxMTU bound a link's MTU: IPv4's minimum datagram and
	// the largest a packet socket can carry.
	MinMTU = 68
	MaxMTU = 65535
)

// maxRequestFDs is the most descriptors any request carries.
const maxRequestFDs = max(StdioFDs, MaxLinks)

// NetworkArgs are the interfaces netstack takes over.
type NetworkArgs struct {
	Links []Link `json:"links"`
}

// Link is one interface of the Sentry's network namespace as the host
// kernel had it configured.
type Link struct {
	Name string `json:"name"`
	// MAC is the interface's Ethernet address (6 bytes).
	MAC []byte `json:"mac"`
	MTU int    `json:"mtu"`
	// Addresses are the interface's addresses with their prefix lengths
	// ("10.0.0.2/24", "fe80::1/64").
	Addresses []netip.Prefix `json:"addresses,omitempty"`
	// Routes go through this interface.
	Routes []Route `json:"routes,omitempty"`
}

// Route is one route of the main table.
type Route struct {
	// Destination is the subnet reached ("0.0.0.0/0" for the default).
	Destination netip.Prefix `json:"destination"`
	// Gateway is the next hop; invalid (omitted) for an on-link route.
	Gateway netip.Addr `json:"gateway,omitzero"`
}

func (n *NetworkArgs) validate(nfds int) error {
	if len(n.Links) == 0 || len(n.Links) > MaxLinks {
		return fmt.Errorf("network: %d links, want 1 to %d", len(n.Links), MaxLinks)
	}
	if nfds != len(n.Links) {
		return fmt.Errorf("network: %d descriptors for %d links", nfds, len(n.Links))
	}
	names := make(map[string]bool, len(n.Links))
	for i := range n.Links {
		l := &n.Links[i]
		if err := l.validate(); err != nil {
			return fmt.Errorf("network: link %q: %w", truncate(l.Name), err)
		}
		if names[l.Name] {
			return fmt.Errorf("network: link %q given twice", l.Name)
		}
		names[l.Name] = true
	}
	return nil
}

func (l *Link) validate() error {
	if l.Name == "" || len(l.Name) > MaxLinkNameLen || strings.ContainsAny(l.Name, "/\x00 ") {
		return errors.New("invalid interface name")
	}
	if len(l.MAC) != 6 {
		return fmt.Errorf("MAC address of %d bytes, want 6", len(l.MAC))
	}
	if l.MTU < MinMTU || l.MTU > MaxMTU {
		return fmt.Errorf("MTU %d out of [%d, %d]", l.MTU, MinMTU, MaxMTU)
	}
	if len(l.Addresses) > MaxLinkAddresses {
		return fmt.Errorf("more than %d addresses", MaxLinkAddresses)
	}
	if len(l.Routes) > MaxLinkRoutes {
		return fmt.Errorf("more than %d routes", MaxLinkRoutes)
	}
	for _, a := range l.Addresses {
		if !validPrefix(a) || a.Addr().IsUnspecified() || a.Addr().IsMulticast() {
			return fmt.Errorf("invalid address %v", a)
		}
	}
	for _, r := range l.Routes {
		if !validPrefix(r.Destination) || r.Destination.Masked() != r.Destination {
			return fmt.Errorf("invalid route destination %v", r.Destination)
		}
		if r.Gateway.IsValid() && (r.Gateway.Zone() != "" || r.Gateway.Is4In6() ||
			r.Gateway.Is4() != r.Destination.Addr().Is4() || r.Gateway.IsUnspecified()) {
			return fmt.Errorf("invalid gateway %v for %v", r.Gateway, r.Destination)
		}
	}
	return nil
}

// validPrefix accepts plain IPv4 or IPv6 prefixes: no zone, no
// IPv4-mapped IPv6 form (which would be the same host under two names).
func validPrefix(p netip.Prefix) bool {
	a := p.Addr()
	return p.IsValid() && a.Zone() == "" && !a.Is4In6()
}

// wantFDs is how many descriptors r carries.
func (r *Request) wantFDs() int {
	if r.Method == MethodNetwork && r.Network != nil {
		return len(r.Network.Links)
	}
	return r.Method.wantFDs()
}

// dropExtraFDs closes the descriptors of data's request beyond an exec's
// stdio unless it is a network request (the only one carrying more), as
// the kernel drops those beyond the room a receiver gives: the server
// receives with room for a network request's.
func dropExtraFDs(data []byte, fds []int) []int {
	if len(fds) <= StdioFDs {
		return fds
	}
	var peek struct {
		Method Method `json:"method"`
	}
	if json.Unmarshal(data, &peek) == nil && peek.Method == MethodNetwork {
		return fds
	}
	closeFDs(fds[StdioFDs:])
	return fds[:StdioFDs]
}
