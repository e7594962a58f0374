package p9

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/unet"
	"golang.org/x/sys/unix"
)

func TestWalkGetAttrOneRoundTrip(t *testing.T) {
	for _, packet := range []bool{false, true} {
		fs := newMemFS()
		n := fs.newNode(unix.S_IFREG|0o640, 5, 6)
		n.data = []byte("hello")
		fs.root.children["f"] = n
		c := serve(t, fs, packet)
		root := attach(t, c)
		ctx := context.Background()

		// A missing name fails with ENOENT and leaves no fid behind: the
		// fid the client frees is reused by the next walk, which would fail
		// with EBADF if the server still held it.
		for i := 0; i < 3; i++ {
			if _, _, _, _, err := root.WalkGetAttr(ctx, []string{"missing"}, AttrAll); err != unix.ENOENT {
				t.Fatalf("walk of a missing name: %v, want ENOENT", err)
			}
		}
		f, qid, valid, attr, err := root.WalkGetAttr(ctx, []string{"f"}, AttrAll)
		must(t, err)
		if qid != n.qid() || valid&AttrSize == 0 || attr.Size != 5 || attr.Mode != unix.S_IFREG|0o640 || attr.UID != 5 || attr.GID != 6 {
			t.Fatalf("got qid %+v valid %#x attr %+v", qid, valid, attr)
		}
		// The new fid is usable like one from Twalk.
		_, _, _, err = f.Open(ctx, unix.O_RDONLY)
		must(t, err)
		buf := make([]byte, 16)
		got, err := f.ReadAt(ctx, buf, 0)
		must(t, err)
		if string(buf[:got]) != "hello" {
			t.Fatalf("read %q", buf[:got])
		}
		must(t, f.Close(ctx))
		// An empty walk clones and reports the attributes of the start.
		cl, qid, _, attr, err := root.WalkGetAttr(ctx, nil, AttrBasic)
		must(t, err)
		if qid.Type != QIDTypeDir || attr.Mode&unix.S_IFMT != unix.S_IFDIR {
			t.Fatalf("clone: qid %+v mode %#o", qid, attr.Mode)
		}
		must(t, cl.Close(ctx))
		// Walking through a file is a partial walk: ENOENT, no fid.
		if _, _, _, _, err := root.WalkGetAttr(ctx, []string{"f", "x"}, AttrAll); err != unix.ENOENT {
			t.Fatalf("walk through a file: %v, want ENOENT", err)
		}
	}
}

// rawServer returns the client end of a stream connection to a server over
// fs, already past Tversion. A server error is a test failure unless
// malformed is set, in which case the server must end with ErrMalformed.
func rawServer(t *testing.T, fs *memFS, malformed bool) *unet.Socket {
	t.Helper()
	a, b, err := unet.SocketPair(false)
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- NewServer(fs).Handle(context.Background(), a) }()
	t.Cleanup(func() {
		b.Shutdown()
		err := <-done
		if malformed && !errors.Is(err, ErrMalformed) {
			t.Errorf("server: %v, want ErrMalformed", err)
		}
		if !malformed && err != nil {
			t.Errorf("server: %v", err)
		}
		b.Close()
	})
	send(t, b, EncodeMessage(nil, NoTag, &Tversion{MSize: 8192, Version: Version}))
	if typ, _ := recvReply(t, b); typ != MsgRversion {
		t.Fatalf("reply to Tversion has type %d", typ)
	}
	return b
}

func send(t *testing.T, s *unet.Socket, b []byte) {
	t.Helper()
	if _, err := s.Send([][]byte{b}, nil); err != nil {
		t.Fatal(err)
	}
}

func recvReply(t *testing.T, s *unet.Socket) (MsgType, Tag) {
	t.Helper()
	buf := make([]byte, 8192)
	typ, tag, _, f, err := readRaw(s, buf)
	if f != nil {
		f.Close()
	}
	must(t, err)
	return typ, tag
}

// The server's reader takes whatever the socket holds: several requests in
// one segment (served in order, all being inline requests) and a request
// split over many must all be answered.
func TestServerFramesCoalescedAndSplitRequests(t *testing.T) {
	s := rawServer(t, newMemFS(), false)
	send(t, s, EncodeMessage(nil, 1, &Tattach{FID: 1, AuthFID: NoFID, UID: 0}))
	if typ, _ := recvReply(t, s); typ != MsgRattach {
		t.Fatalf("reply to Tattach has type %d", typ)
	}
	var batch []byte
	batch = EncodeMessage(batch, 1, &Tgetattr{FID: 1, Mask: AttrBasic})
	batch = EncodeMessage(batch, 2, &Tgetattr{FID: 1, Mask: AttrBasic})
	batch = EncodeMessage(batch, 3, &Twalk{FID: 1, NewFID: 2})
	send(t, s, batch)
	for _, want := range []struct {
		typ MsgType
		tag Tag
	}{{MsgRgetattr, 1}, {MsgRgetattr, 2}, {MsgRwalk, 3}} {
		if typ, tag := recvReply(t, s); typ != want.typ || tag != want.tag {
			t.Fatalf("got type %d tag %d, want type %d tag %d", typ, tag, want.typ, want.tag)
		}
	}
	msg := EncodeMessage(nil, 4, &Twalkgetattr{Walk: Twalk{FID: 1, NewFID: 3}, Mask: AttrAll})
	for i := range msg {
		send(t, s, msg[i:i+1])
		time.Sleep(time.Millisecond) // let the server see each byte alone
	}
	if typ, tag := recvReply(t, s); typ != MsgRwalkgetattr || tag != 4 {
		t.Fatalf("split request: got type %d tag %d", typ, tag)
	}
}

// A size field beyond msize ends the connection rather than being buffered.
func TestServerRejectsOversizedFrame(t *testing.T) {
	s := rawServer(t, newMemFS(), true)
	hdr := []byte{0xff, 0xff, 0, 0, uint8(MsgTgetattr), 1, 0}
	send(t, s, hdr)
	buf := make([]byte, 64)
	if _, _, _, _, err := readRaw(s, buf); err == nil {
		t.Fatal("server answered a message larger than msize")
	}
}

func TestCloneOpenPipelined(t *testing.T) {
	for _, packet := range []bool{false, true} {
		fs := newMemFS()
		n := fs.newNode(unix.S_IFREG|0o644, 0, 0)
		n.data = []byte("donated bytes")
		fs.root.children["donor"] = n
		c := serve(t, fs, packet)
		root := attach(t, c)
		ctx := context.Background()
		_, f, err := root.Walk(ctx, []string{"donor"})
		must(t, err)
		// Two opens of the same file get two fids; f itself stays unopened
		// (a second Tlopen of one fid would fail with EINVAL).
		for k := 0; k < 2; k++ {
			h, qid, _, host, err := f.CloneOpen(ctx, unix.O_RDONLY)
			must(t, err)
			if qid != n.qid() || host == nil {
				t.Fatalf("open %d: qid %+v host %v", k, qid, host)
			}
			buf := make([]byte, 64)
			got, _ := host.Read(buf)
			host.Close()
			if string(buf[:got]) != "donated bytes" {
				t.Fatalf("open %d: donated file holds %q", k, buf[:got])
			}
			must(t, h.Close(ctx))
		}
		// A clone of a dead fid fails both halves and leaves no fid: the
		// freed fid is reused by the walk below, which would fail with
		// EBADF if the server still held it.
		must(t, f.Close(ctx))
		for k := 0; k < 3; k++ {
			if _, _, _, _, err := f.CloneOpen(ctx, unix.O_RDONLY); err != unix.EBADF {
				t.Fatalf("clone-open of a clunked fid: %v, want EBADF", err)
			}
		}
		_, g, err := root.Walk(ctx, []string{"donor"})
		must(t, err)
		must(t, g.Close(ctx))
	}
}

// The server fills a Treaddir reply from several File.Readdir calls, so a
// reply with room left marks the end and the client need not ask again.
func TestReaddirFilledAndEndInferred(t *testing.T) {
	fs := newMemFS()
	fs.readdirMax = 3
	var want []string
	for i := 0; i < 40; i++ {
		name := fmt.Sprintf("entry%02d", i)
		fs.root.children[name] = fs.newNode(unix.S_IFREG|0o644, 0, 0)
		want = append(want, name)
	}
	c := serve(t, fs, false)
	root := attach(t, c)
	ctx := context.Background()
	dir, err := root.Clone(ctx)
	must(t, err)
	_, _, _, err = dir.Open(ctx, unix.O_RDONLY)
	must(t, err)
	defer dir.Close(ctx)

	ents, end, err := dir.ReaddirEnd(ctx, 0, 64<<10)
	must(t, err)
	if len(ents) != 40 || !end {
		t.Fatalf("large buffer: %d entries, end %v; want 40 and the end", len(ents), end)
	}
	// A small buffer needs several requests; none but the last is the end.
	var got []string
	off := uint64(0)
	for rounds := 0; ; rounds++ {
		if rounds > 40 {
			t.Fatal("listing never ended")
		}
		ents, end, err := dir.ReaddirEnd(ctx, off, 400)
		must(t, err)
		for _, e := range ents {
			got = append(got, e.Name)
			off = e.Offset
		}
		if end {
			break
		}
		if len(ents) == 0 {
			t.Fatal("empty reply not reported as the end")
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listed %v\nwant %v", got, want)
	}
}
