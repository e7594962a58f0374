package unix

import (
	"bytes"
	"testing"

	sys "golang.org/x/sys/unix"
)

func TestParseAddr(t *testing.T) {
	for _, c := range []struct {
		name    string
		in      []byte
		wantErr bool
		path    string
		abs     string
		auto    bool
		raw     []byte
	}{
		{name: "too short", in: []byte{1}, wantErr: true},
		{name: "wrong family", in: []byte{2, 0, 'a'}, wantErr: true},
		{name: "too long", in: append([]byte{1, 0}, bytes.Repeat([]byte{'a'}, 109)...), wantErr: true},
		{name: "autobind", in: []byte{1, 0}, auto: true},
		{name: "path", in: []byte{1, 0, '/', 's'}, path: "/s", raw: []byte{1, 0, '/', 's', 0}},
		{name: "path cut at NUL", in: []byte{1, 0, '/', 's', 0, 'x'}, path: "/s", raw: []byte{1, 0, '/', 's', 0}},
		{name: "abstract keeps NULs", in: []byte{1, 0, 0, 'a', 0}, abs: "a\x00", raw: []byte{1, 0, 0, 'a', 0}},
		{name: "full-length path", in: append([]byte{1, 0}, bytes.Repeat([]byte{'p'}, 108)...), path: string(bytes.Repeat([]byte{'p'}, 108)),
			raw: append(append([]byte{1, 0}, bytes.Repeat([]byte{'p'}, 108)...), 0)},
	} {
		a, err := parseAddr(c.in)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err %v", c.name, err)
			continue
		}
		if err != nil {
			if err != sys.EINVAL {
				t.Errorf("%s: %v, want EINVAL", c.name, err)
			}
			continue
		}
		if a.path != c.path || a.abstract != c.abs || a.autobind != c.auto || !bytes.Equal(a.raw, c.raw) {
			t.Errorf("%s: got %+v", c.name, a)
		}
	}
}

// FuzzParseAddr: any bytes parse or give EINVAL, and a parsed name's
// reported address is a valid sockaddr_un of the same kind.
func FuzzParseAddr(f *testing.F) {
	f.Add([]byte{1, 0, '/', 'x'})
	f.Add([]byte{1, 0, 0, 'a'})
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseAddr(b)
		if err != nil {
			if err != sys.EINVAL {
				t.Fatalf("error %v, want EINVAL", err)
			}
			return
		}
		if a.autobind {
			return
		}
		if len(a.raw) < 3 || a.raw[0] != sys.AF_UNIX || a.raw[1] != 0 {
			t.Fatalf("reported address %q", a.raw)
		}
		if a.isAbs != (a.raw[2] == 0) {
			t.Fatalf("abstract %v but address %q", a.isAbs, a.raw)
		}
		if !a.isAbs && bytes.IndexByte([]byte(a.path), 0) >= 0 {
			t.Fatalf("path %q holds a NUL", a.path)
		}
	})
}
