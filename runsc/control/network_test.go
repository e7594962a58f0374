package control

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

const validNetwork = `{"version":1,"method":"network","network":{"links":[{"name":"eth0","mac":"AkIKAAAC","mtu":1500,` +
	`"addresses":["10.0.0.2/24","fe80::42:aff:fe00:2/64"],` +
	`"routes":[{"destination":"10.0.0.0/24"},{"destination":"0.0.0.0/0","gateway":"10.0.0.1"},{"destination":"fe80::/64"}]}]}}`

func TestDecodeNetworkRequest(t *testing.T) {
	r, err := DecodeRequest([]byte(validNetwork), 1)
	if err != nil {
		t.Fatalf("DecodeRequest: %v", err)
	}
	l := r.Network.Links[0]
	if l.Name != "eth0" || l.MTU != 1500 || string(l.MAC) != "\x02\x42\x0a\x00\x00\x02" {
		t.Errorf("decoded link %+v", l)
	}
	if len(l.Addresses) != 2 || l.Addresses[0] != netip.MustParsePrefix("10.0.0.2/24") || !l.Addresses[1].Addr().Is6() {
		t.Errorf("decoded addresses %v", l.Addresses)
	}
	if len(l.Routes) != 3 || l.Routes[0].Gateway.IsValid() || l.Routes[1].Gateway != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("decoded routes %+v", l.Routes)
	}
	// What runsc encodes decodes to the same thing.
	data, err := Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := DecodeRequest(data, 1)
	if err != nil || r2.Network.Links[0].Routes[1] != l.Routes[1] || r2.Network.Links[0].Addresses[1] != l.Addresses[1] {
		t.Errorf("round trip: %+v, %v", r2, err)
	}
}

func TestDecodeNetworkRequestRejects(t *testing.T) {
	link := func(fields string) string {
		return `{"version":1,"method":"network","network":{"links":[{` + fields + `}]}}`
	}
	ok := `"name":"eth0","mac":"AkIKAAAC","mtu":1500`
	eleven := strings.Repeat(`{"name":"e","mac":"AkIKAAAC","mtu":1500},`, MaxLinks+1)
	for _, tc := range []struct {
		name, data string
		fds        int
		want       string
	}{
		{"no fds", link(ok), 0, "descriptors"},
		{"extra fds", link(ok), 2, "descriptors"},
		{"no links", `{"version":1,"method":"network","network":{"links":[]}}`, 0, "links"},
		{"no args", `{"version":1,"method":"network"}`, 0, "wrong arguments"},
		{"also exec", `{"version":1,"method":"network","exec":{"args":["a"]},"network":{"links":[{` + ok + `}]}}`, 1, "wrong arguments"},
		{"network on start", `{"version":1,"method":"start","network":{"links":[]}}`, 0, "wrong arguments"},
		{"too many links", `{"version":1,"method":"network","network":{"links":[` + strings.TrimSuffix(eleven, ",") + `]}}`, MaxLinks + 1, "links"},
		{"duplicate", `{"version":1,"method":"network","network":{"links":[{` + ok + `},{` + ok + `}]}}`, 2, "twice"},
		{"empty name", link(`"name":"","mac":"AkIKAAAC","mtu":1500`), 1, "name"},
		{"long name", link(`"name":"abcdefghijklmnop","mac":"AkIKAAAC","mtu":1500`), 1, "name"},
		{"slash name", link(`"name":"a/b","mac":"AkIKAAAC","mtu":1500`), 1, "name"},
		{"short mac", link(`"name":"eth0","mac":"AkIK","mtu":1500`), 1, "MAC"},
		{"no mac", link(`"name":"eth0","mtu":1500`), 1, "MAC"},
		{"mtu 0", link(`"name":"eth0","mac":"AkIKAAAC","mtu":0`), 1, "MTU"},
		{"mtu huge", link(`"name":"eth0","mac":"AkIKAAAC","mtu":70000`), 1, "MTU"},
		{"bad address", link(ok + `,"addresses":["10.0.0.300/24"]`), 1, "malformed"},
		{"prefix too long", link(ok + `,"addresses":["10.0.0.2/33"]`), 1, "malformed"},
		{"unspecified", link(ok + `,"addresses":["0.0.0.0/0"]`), 1, "invalid address"},
		{"multicast", link(ok + `,"addresses":["224.0.0.1/4"]`), 1, "invalid address"},
		{"mapped", link(ok + `,"addresses":["::ffff:10.0.0.2/120"]`), 1, "invalid address"},
		{"unmasked route", link(ok + `,"routes":[{"destination":"10.0.0.5/24"}]`), 1, "destination"},
		{"family mix", link(ok + `,"routes":[{"destination":"10.0.0.0/24","gateway":"fe80::1"}]`), 1, "gateway"},
		{"zero gateway", link(ok + `,"routes":[{"destination":"0.0.0.0/0","gateway":"0.0.0.0"}]`), 1, "gateway"},
		{"zoned gateway", link(ok + `,"routes":[{"destination":"::/0","gateway":"fe80::1%eth0"}]`), 1, "gateway"},
		{"missing destination", link(ok + `,"routes":[{"gateway":"10.0.0.1"}]`), 1, "destination"},
		{"too many addresses", link(ok + `,"addresses":[` + strings.TrimSuffix(strings.Repeat(`"10.0.0.2/24",`, MaxLinkAddresses+1), ",") + `]`), 1, "addresses"},
		{"unknown field", link(ok + `,"flags":1`), 1, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tc.data), tc.fds)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DecodeRequest(%.100s) = %v, want error containing %q", tc.data, err, tc.want)
			}
		})
	}
}

func FuzzDecodeNetworkRequest(f *testing.F) {
	f.Add([]byte(validNetwork), 1)
	f.Add([]byte(`{"version":1,"method":"network","network":{"links":[{"name":"a","mac":"AAAAAAAA","mtu":68},{"name":"b","mac":"AAAAAAAA","mtu":65535,"addresses":["::1/128"]}]}}`), 2)
	f.Add([]byte(`{"version":1,"method":"network","network":{"links":[{"name":"a","mac":"AAAAAAAA","mtu":1500,"routes":[{"destination":"::/0","gateway":"fe80::1"}]}]}}`), 1)
	f.Add([]byte(`{"version":1,"method":"network","network":null}`), 0)
	f.Fuzz(func(t *testing.T, data []byte, nfds int) {
		r, err := DecodeRequest(data, nfds)
		if err != nil || r.Method != MethodNetwork {
			return
		}
		// What the Sentry installs is what it can install.
		links := r.Network.Links
		if len(links) == 0 || len(links) > MaxLinks || len(links) != nfds {
			t.Fatalf("accepted %d links with %d fds", len(links), nfds)
		}
		names := map[string]bool{}
		for _, l := range links {
			if names[l.Name] || l.Name == "" || len(l.Name) > MaxLinkNameLen || len(l.MAC) != 6 || l.MTU < MinMTU || l.MTU > MaxMTU {
				t.Fatalf("accepted link %+v", l)
			}
			names[l.Name] = true
			for _, a := range l.Addresses {
				if !a.IsValid() || a.Addr().Zone() != "" || a.Addr().Is4In6() {
					t.Fatalf("accepted address %v", a)
				}
			}
			for _, rt := range l.Routes {
				if !rt.Destination.IsValid() || (rt.Gateway.IsValid() && rt.Gateway.Is4() != rt.Destination.Addr().Is4()) {
					t.Fatalf("accepted route %+v", rt)
				}
			}
		}
	})
}

// The server passes a network request every one of its descriptors
// (more than an exec's three) and still trims other requests to three.
func TestServeNetworkDescriptors(t *testing.T) {
	dir := t.TempDir()
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 2)
	srv, err := Serve(ln, func(req *Request, fds []*os.File) *Response {
		got <- len(fds)
		for _, f := range fds {
			f.Close()
		}
		return &Response{}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(time.Second)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fd := int(r.Fd())
	var links []Link
	var fds []int
	for _, name := range []string{"eth0", "eth1", "eth2", "eth3", "eth4"} {
		links = append(links, Link{Name: name, MAC: []byte{2, 0, 0, 0, 0, 1}, MTU: 1500, Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.2/16")}})
		fds = append(fds, fd)
	}
	if _, err := Call(dir, &Request{Method: MethodNetwork, Network: &NetworkArgs{Links: links}}, fds); err != nil {
		t.Fatalf("network: %v", err)
	}
	if n := <-got; n != 5 {
		t.Errorf("handler got %d descriptors, want 5", n)
	}
	if _, err := Call(dir, &Request{Method: MethodExec, Exec: &ExecArgs{Args: []string{"x"}}}, fds); err != nil {
		t.Fatalf("exec with 5 descriptors: %v", err)
	}
	if n := <-got; n != StdioFDs {
		t.Errorf("exec handler got %d descriptors, want %d", n, StdioFDs)
	}
}
