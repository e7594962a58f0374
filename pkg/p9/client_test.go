package p9

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/unet"
	"golang.org/x/sys/unix"
)

// serve starts a server for fs on one end of a socketpair and returns a
// client on the other. Cleanup closes both and checks no File leaked.
func serve(t testing.TB, fs *memFS, packet bool) *Client {
	t.Helper()
	a, b, err := unet.SocketPair(packet)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- NewServer(fs).Handle(context.Background(), a) }()
	c, err := NewClient(b, 0)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() {
		c.Close()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		if n := fs.open.Load(); n != 0 {
			t.Errorf("%d Files left open after disconnect", n)
		}
	})
	return c
}

func attach(t testing.TB, c *Client) *ClientFile {
	t.Helper()
	root, qid, err := c.Attach(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if qid.Type != QIDTypeDir {
		t.Fatalf("root qid %+v", qid)
	}
	return root
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErrno(t testing.TB, err error, want unix.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
}

func TestClientServerEveryOperation(t *testing.T) {
	for _, packet := range []bool{false, true} {
		t.Run(fmt.Sprintf("packet=%v", packet), func(t *testing.T) {
			testEveryOperation(t, packet)
		})
	}
}

func testEveryOperation(t *testing.T, packet bool) {
	ctx := context.Background()
	fs := newMemFS()
	c := serve(t, fs, packet)
	root := attach(t, c)

	// mkdir, lcreate, write, read, getattr, setattr
	_, err := root.Mkdir(ctx, "dir", 0o750, 7)
	must(t, err)
	_, dir, err := root.Walk(ctx, []string{"dir"})
	must(t, err)
	f, err := dir.Clone(ctx)
	must(t, err)
	qid, _, _, err := f.Create(ctx, "file", unix.O_RDWR, 0o640, 7)
	must(t, err)
	if qid.Type != QIDTypeRegular {
		t.Fatalf("created qid %+v", qid)
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: several Twrites
	n, err := f.WriteAt(ctx, payload, 0)
	if err != nil || n != len(payload) {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	got := make([]byte, len(payload)+100)
	n, err = f.ReadAt(ctx, got, 0)
	if err != nil || n != len(payload) || !bytes.Equal(got[:n], payload) {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	_, valid, attr, err := f.GetAttr(ctx, AttrAll)
	must(t, err)
	if valid&AttrSize == 0 || attr.Size != uint64(len(payload)) || attr.Mode != unix.S_IFREG|0o640 || attr.GID != 7 {
		t.Fatalf("getattr %+v valid %#x", attr, valid)
	}
	must(t, f.SetAttr(ctx, SetAttrMode|SetAttrSize, SetAttr{Mode: 0o600, Size: 5}))
	_, _, attr, _ = f.GetAttr(ctx, AttrAll)
	if attr.Size != 5 || attr.Mode&0o777 != 0o600 {
		t.Fatalf("after setattr %+v", attr)
	}
	must(t, f.FSync(ctx, true))

	// Read on an unopened fid is EBADF; open twice is EINVAL.
	_, g, err := dir.Walk(ctx, []string{"file"})
	must(t, err)
	_, err = g.ReadAt(ctx, got[:1], 0)
	wantErrno(t, err, unix.EBADF)
	_, _, _, err = g.Open(ctx, unix.O_RDONLY)
	must(t, err)
	_, _, _, err = g.Open(ctx, unix.O_RDONLY)
	wantErrno(t, err, unix.EINVAL)
	_, err = g.WriteAt(ctx, []byte("x"), 0)
	wantErrno(t, err, unix.EBADF) // opened read-only

	// symlink, readlink, mknod, link
	_, err = dir.Symlink(ctx, "ln", "../target", 0)
	must(t, err)
	_, l, err := dir.Walk(ctx, []string{"ln"})
	must(t, err)
	target, err := l.Readlink(ctx)
	if err != nil || target != "../target" {
		t.Fatalf("readlink %q %v", target, err)
	}
	_, err = dir.Mknod(ctx, "fifo", unix.S_IFIFO|0o600, 0, 0, 0)
	must(t, err)
	must(t, dir.Link(ctx, g, "hard"))
	_, _, attr, _ = g.GetAttr(ctx, AttrNLink)
	if attr.NLink != 2 {
		t.Fatalf("nlink after link = %d", attr.NLink)
	}

	// readdir in small pieces, following cookies
	must(t, dir.SetAttr(ctx, 0, SetAttr{}))
	d2, err := dir.Clone(ctx)
	must(t, err)
	_, _, _, err = d2.Open(ctx, unix.O_RDONLY|unix.O_DIRECTORY)
	must(t, err)
	var names []string
	var off uint64
	for {
		ents, err := d2.Readdir(ctx, off, 40) // room for one entry at a time
		must(t, err)
		if len(ents) == 0 {
			break
		}
		if len(ents) != 1 {
			t.Fatalf("readdir with count 40 returned %d entries", len(ents))
		}
		names = append(names, ents[0].Name)
		off = ents[0].Offset
	}
	if fmt.Sprint(names) != "[fifo file hard ln]" {
		t.Fatalf("readdir names %v", names)
	}
	if _, err := d2.Readdir(ctx, 0, 10); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("readdir with a count too small for one entry: %v, want EINVAL", err)
	}

	// rename (by fid), renameat, unlinkat, remove
	must(t, g.Rename(ctx, root, "moved"))
	if _, _, err := root.Walk(ctx, []string{"moved"}); err != nil {
		t.Fatalf("walk to renamed file: %v", err)
	}
	must(t, dir.RenameAt(ctx, "hard", root, "hard2"))
	must(t, root.UnlinkAt(ctx, "hard2", 0))
	wantErrno(t, root.UnlinkAt(ctx, "dir", 0), unix.EISDIR)
	_, fifo, err := dir.Walk(ctx, []string{"fifo"})
	must(t, err)
	must(t, fifo.Remove(ctx))
	if _, _, err := dir.Walk(ctx, []string{"fifo"}); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("walk to removed: %v", err)
	}

	// xattrs
	must(t, f.SetXattr(ctx, "user.k", []byte("value"), unix.XATTR_CREATE))
	wantErrno(t, f.SetXattr(ctx, "user.k", []byte("v2"), unix.XATTR_CREATE), unix.EEXIST)
	must(t, f.SetXattr(ctx, "user.e", nil, 0))
	v, err := f.GetXattr(ctx, "user.k")
	if err != nil || string(v) != "value" {
		t.Fatalf("getxattr %q %v", v, err)
	}
	list, err := f.GetXattr(ctx, "")
	if err != nil || string(list) != "user.e\x00user.k\x00" {
		t.Fatalf("listxattr %q %v", list, err)
	}
	_, err = f.GetXattr(ctx, "user.none")
	wantErrno(t, err, unix.ENODATA)
	// Removal keeps an empty value distinct from no value.
	must(t, f.RemoveXattr(ctx, "user.k"))
	_, err = f.GetXattr(ctx, "user.k")
	wantErrno(t, err, unix.ENODATA)
	if v, err := f.GetXattr(ctx, "user.e"); err != nil || len(v) != 0 {
		t.Fatalf("empty value after removing another: %q %v", v, err)
	}
	wantErrno(t, f.RemoveXattr(ctx, "user.k"), unix.ENODATA)
	var rx Rxattrcreate
	wantErrno(t, f.client.rpc(ctx, &Txattrcreate{FID: f.fid, Name: "user.e", AttrSize: 3, Flags: XattrRemove}, &rx), unix.EINVAL)

	// locks
	st, err := f.Lock(ctx, Lock{Type: LockTypeWrite, Length: 10, ClientID: "a"})
	if err != nil || st != LockStatusSuccess {
		t.Fatalf("lock %d %v", st, err)
	}
	st, _ = g.Lock(ctx, Lock{Type: LockTypeWrite, Length: 10, ClientID: "b"})
	if st != LockStatusBlocked {
		t.Fatalf("conflicting lock status %d", st)
	}
	held, err := g.GetLock(ctx, Lock{Type: LockTypeWrite, ClientID: "b"})
	if err != nil || held.ClientID != "a" || held.Type != LockTypeWrite {
		t.Fatalf("getlock %+v %v", held, err)
	}

	// statfs
	sfs, err := root.StatFS(ctx)
	if err != nil || sfs.BlockSize != 4096 || sfs.NameLength != 255 {
		t.Fatalf("statfs %+v %v", sfs, err)
	}

	// bad names and fids
	for _, bad := range []string{"..", ".", "a/b", "", "x\x00y"} {
		if _, _, err := root.Walk(ctx, []string{bad}); !errors.Is(err, unix.EINVAL) {
			t.Errorf("walk %q: %v", bad, err)
		}
		if _, err := root.Mkdir(ctx, bad, 0o700, 0); !errors.Is(err, unix.EINVAL) {
			t.Errorf("mkdir %q: %v", bad, err)
		}
	}
	qids, _, err := root.Walk(ctx, []string{"dir", ".."})
	if !errors.Is(err, unix.ENOENT) || len(qids) != 1 {
		t.Errorf("walk dir/..: qids %v err %v, want partial walk", qids, err)
	}
	bogus := &ClientFile{client: c, fid: 999}
	_, _, _, err = bogus.GetAttr(ctx, AttrAll)
	wantErrno(t, err, unix.EBADF)
	wantErrno(t, c.rpc(ctx, &Tauth{AuthFID: 5, AttachName: ""}, &Rauth{}), unix.EOPNOTSUPP)
	if _, _, err := c.Attach(ctx, "nope", 0); !errors.Is(err, unix.ENOENT) {
		t.Errorf("attach to unknown tree: %v", err)
	}

	for _, cf := range []*ClientFile{root, dir, f, g, l, d2} {
		must(t, cf.Close(ctx))
	}
	if err := root.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestDonatedFile(t *testing.T) {
	fs := newMemFS()
	n := fs.newNode(unix.S_IFREG|0o644, 0, 0)
	n.data = []byte("donated bytes")
	fs.root.children["donor"] = n
	c := serve(t, fs, false)
	root := attach(t, c)
	ctx := context.Background()
	_, f, err := root.Walk(ctx, []string{"donor"})
	must(t, err)
	_, _, host, err := f.Open(ctx, unix.O_RDONLY)
	must(t, err)
	if host == nil {
		t.Fatal("no host file received with Rlopen")
	}
	defer host.Close()
	data, err := io.ReadAll(host)
	if err != nil || string(data) != "donated bytes" {
		t.Fatalf("donated fd reads %q, %v", data, err)
	}
	root.Close(ctx)
	f.Close(ctx)
}

func TestConcurrentPipelinedRequests(t *testing.T) {
	fs := newMemFS()
	c := serve(t, fs, false)
	root := attach(t, c)
	ctx := context.Background()
	const workers, iters = 32, 100
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			name := fmt.Sprintf("f%d", w)
			f, err := root.Clone(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer f.Close(ctx)
			if _, _, _, err := f.Create(ctx, name, unix.O_RDWR, 0o600, 0); err != nil {
				errs <- err
				return
			}
			buf := make([]byte, 8)
			for i := 0; i < iters; i++ {
				want := fmt.Sprintf("%02d-%05d", w, i)
				if _, err := f.WriteAt(ctx, []byte(want), 0); err != nil {
					errs <- err
					return
				}
				if _, err := f.ReadAt(ctx, buf, 0); err != nil || string(buf) != want {
					errs <- fmt.Errorf("worker %d read %q want %q: %v", w, buf, want, err)
					return
				}
				if _, _, attr, err := f.GetAttr(ctx, AttrSize); err != nil || attr.Size != 8 {
					errs <- fmt.Errorf("getattr %+v %v", attr, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	root.Close(ctx)
}

// TestFlushHonoursCompletedRequest cancels a read the server is still
// running: the client sends Tflush, the server finishes the read before
// answering Rflush, and the client returns the read's real result.
func TestFlushHonoursCompletedRequest(t *testing.T) {
	fs := newMemFS()
	fs.gate, fs.entered = make(chan struct{}), make(chan struct{}, 1)
	n := fs.newNode(unix.S_IFREG|0o644, 0, 0)
	n.data = []byte("slow data")
	fs.root.children["slow"] = n
	c := serve(t, fs, false)
	root := attach(t, c)
	_, f, err := root.Walk(context.Background(), []string{"slow"})
	must(t, err)
	_, _, _, err = f.Open(context.Background(), unix.O_RDONLY)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	buf := make([]byte, 9)
	go func() {
		n, err := f.ReadAt(ctx, buf, 0)
		res <- result{n, err}
	}()
	<-fs.entered
	cancel()
	// The client must not return before the server has answered the flush,
	// which it cannot do while the read is held.
	select {
	case r := <-res:
		t.Fatalf("ReadAt returned %v before the flushed request finished", r)
	case <-time.After(50 * time.Millisecond):
	}
	close(fs.gate)
	r := <-res
	if r.err != nil || r.n != 9 || string(buf) != "slow data" {
		t.Fatalf("flushed read returned %d %v %q, want the completed result", r.n, r.err, buf)
	}
	// The connection still works and the tag was recycled.
	if _, _, _, err := f.GetAttr(context.Background(), AttrMode); err != nil {
		t.Fatal(err)
	}
	root.Close(context.Background())
	f.Close(context.Background())
}

// TestFlushAbandonedRequest drives the client against a scripted server that
// answers Tflush without ever answering the flushed request.
func TestFlushAbandonedRequest(t *testing.T) {
	a, b, err := unet.SocketPair(true)
	must(t, err)
	defer a.Close()
	serverDone := make(chan error, 1)
	go func() {
		serverDone <- func() error {
			buf := make([]byte, DefaultMSize)
			expect := func(want MsgType) (Tag, Message, error) {
				typ, tag, body, _, err := readRaw(a, buf)
				if err != nil {
					return 0, nil, err
				}
				if typ != want {
					return 0, nil, fmt.Errorf("got type %d want %d", typ, want)
				}
				m, err := DecodeMessage(typ, body)
				return tag, m, err
			}
			if _, _, err := expect(MsgTversion); err != nil {
				return err
			}
			writeRaw(a, EncodeMessage(nil, NoTag, &Rversion{MSize: 8192, Version: Version}), nil)
			readTag, _, err := expect(MsgTgetattr)
			if err != nil {
				return err
			}
			flushTag, m, err := expect(MsgTflush)
			if err != nil {
				return err
			}
			if m.(*Tflush).OldTag != readTag {
				return fmt.Errorf("flush of tag %d, want %d", m.(*Tflush).OldTag, readTag)
			}
			writeRaw(a, EncodeMessage(nil, flushTag, &Rflush{}), nil)
			// The abandoned tag is reusable.
			tag, _, err := expect(MsgTgetattr)
			if err != nil {
				return err
			}
			writeRaw(a, EncodeMessage(nil, tag, &Rgetattr{QID: QID{Path: 5}}), nil)
			return nil
		}()
	}()
	c, err := NewClient(b, 8192)
	must(t, err)
	defer c.Close()
	if c.MSize() != 8192 {
		t.Fatalf("msize %d", c.MSize())
	}
	f := &ClientFile{client: c, fid: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _, _, err = f.GetAttr(ctx, AttrAll)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled getattr: %v", err)
	}
	qid, _, _, err := f.GetAttr(context.Background(), AttrAll)
	if err != nil || qid.Path != 5 {
		t.Fatalf("getattr after flush: %+v %v", qid, err)
	}
	if err := <-serverDone; err != nil {
		t.Fatal(err)
	}
}

func TestVersionNegotiation(t *testing.T) {
	a, b, err := unet.SocketPair(false)
	must(t, err)
	defer b.Close()
	go NewServer(newMemFS()).Handle(context.Background(), a)
	send := func(m Message, tag Tag) {
		must(t, writeRaw(b, EncodeMessage(nil, tag, m), nil))
	}
	buf := make([]byte, 1<<16)
	recv := func() Message {
		typ, _, body, _, err := readRaw(b, buf)
		must(t, err)
		m, err := DecodeMessage(typ, body)
		must(t, err)
		return m
	}
	send(&Tversion{MSize: 1 << 30, Version: "9P2000"}, NoTag)
	if rv := recv().(*Rversion); rv.Version != "unknown" {
		t.Fatalf("9P2000 (not .L) accepted: %+v", rv)
	}
	send(&Tversion{MSize: 100, Version: Version}, NoTag)
	if rv := recv().(*Rversion); rv.Version != "unknown" {
		t.Fatalf("msize 100 accepted: %+v", rv)
	}
	send(&Tversion{MSize: 1 << 30, Version: Version}, NoTag)
	if rv := recv().(*Rversion); rv.Version != Version || rv.MSize != DefaultMSize {
		t.Fatalf("Rversion %+v, want msize capped at %d", rv, DefaultMSize)
	}
	send(&Tversion{MSize: 8192, Version: Version}, NoTag)
	if rv := recv().(*Rversion); rv.MSize != 8192 {
		t.Fatalf("renegotiated %+v", rv)
	}
	// A message larger than the negotiated msize ends the connection.
	send(&Twrite{FID: 1, Data: make([]byte, 9000)}, 1)
	if _, _, _, _, err := readRaw(b, buf); !errors.Is(err, unet.ErrClosed) {
		t.Fatalf("oversized message: %v, want connection closed", err)
	}
}

func TestServerRejectsHostileFraming(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"size 2GiB", []byte{0, 0, 0, 0x80, 100, 0xff, 0xff}},
		{"size below header", []byte{3, 0, 0, 0, 100, 0xff, 0xff}},
		{"before version", EncodeMessage(nil, 1, &Tclunk{FID: 1})},
	} {
		a, b, err := unet.SocketPair(false)
		must(t, err)
		done := make(chan error, 1)
		go func() { done <- NewServer(newMemFS()).Handle(context.Background(), a) }()
		_, err = b.Send([][]byte{tc.raw}, nil)
		must(t, err)
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: server returned nil", tc.name)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: server still running", tc.name)
		}
		b.Close()
	}
}

func TestServerStopsOnContextCancel(t *testing.T) {
	a, b, err := unet.SocketPair(false)
	must(t, err)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewServer(newMemFS()).Handle(ctx, a) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Handle after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Handle ignored cancellation")
	}
}

func TestClientRejectsUnsolicitedReply(t *testing.T) {
	a, b, err := unet.SocketPair(true)
	must(t, err)
	defer a.Close()
	go func() {
		buf := make([]byte, 8192)
		readRaw(a, buf)
		writeRaw(a, EncodeMessage(nil, NoTag, &Rversion{MSize: 8192, Version: Version}), nil)
		writeRaw(a, EncodeMessage(nil, 5, &Rclunk{}), nil) // nobody asked
	}()
	c, err := NewClient(b, 8192)
	must(t, err)
	defer c.Close()
	_, _, _, err = (&ClientFile{client: c, fid: 1}).GetAttr(context.Background(), AttrAll)
	if !errors.Is(err, ErrClientClosed) {
		t.Fatalf("call after protocol violation: %v", err)
	}
}

// FuzzServer feeds arbitrary bytes to a server after a valid handshake: it
// must neither panic nor hang, whatever the framing.
func FuzzServer(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(EncodeMessage(nil, 1, m))
	}
	f.Add(append(EncodeMessage(nil, 1, &Tattach{FID: 1, AuthFID: NoFID}), EncodeMessage(nil, 2, &Twalk{FID: 1, NewFID: 2, Names: []string{".."}})...))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 110, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b, err := unet.SocketPair(false)
		if err != nil {
			t.Fatal(err)
		}
		fs := newMemFS()
		done := make(chan error, 1)
		go func() { done <- NewServer(fs).Handle(context.Background(), a) }()
		hello := EncodeMessage(nil, NoTag, &Tversion{MSize: 8192, Version: Version})
		b.Send([][]byte{hello, data}, nil)
		// Drain replies until the server has had its say, then hang up.
		go func() {
			buf := make([]byte, 1<<16)
			for {
				if _, _, err := b.Recv([][]byte{buf}, 0); err != nil {
					return
				}
			}
		}()
		time.Sleep(time.Millisecond)
		b.Shutdown()
		<-done
		b.Close()
		if n := fs.open.Load(); n != 0 {
			t.Fatalf("%d files leaked", n)
		}
	})
}

// TestTagReuseImmediatelyAfterReply reuses one tag as soon as each reply
// arrives, which races the server's own bookkeeping for that tag; the server
// must accept it rather than treat it as a protocol violation.
func TestTagReuseImmediatelyAfterReply(t *testing.T) {
	a, b, err := unet.SocketPair(true)
	must(t, err)
	defer b.Close()
	done := make(chan error, 1)
	go func() { done <- NewServer(newMemFS()).Handle(context.Background(), a) }()
	buf := make([]byte, 8192)
	roundTrip := func(tag Tag, m Message) Message {
		t.Helper()
		must(t, writeRaw(b, EncodeMessage(nil, tag, m), nil))
		typ, gotTag, body, _, err := readRaw(b, buf)
		must(t, err)
		if gotTag != tag {
			t.Fatalf("reply tag %d, want %d", gotTag, tag)
		}
		r, err := DecodeMessage(typ, body)
		must(t, err)
		return r
	}
	roundTrip(NoTag, &Tversion{MSize: 8192, Version: Version})
	roundTrip(1, &Tattach{FID: 1, AuthFID: NoFID})
	for i := 0; i < 3000; i++ {
		if r, ok := roundTrip(1, &Tgetattr{FID: 1, Mask: AttrAll}).(*Rgetattr); !ok || r.QID.Type != QIDTypeDir {
			t.Fatalf("iteration %d: %+v", i, r)
		}
	}
	// Flushing a tag that is not in flight is answered at once.
	if _, ok := roundTrip(2, &Tflush{OldTag: 77}).(*Rflush); !ok {
		t.Fatal("no Rflush for an idle tag")
	}
	b.Shutdown()
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
}

// FuzzClient plays a hostile server: after a valid Rversion it answers with
// arbitrary bytes. The client must fail its calls, never panic or hang.
func FuzzClient(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(EncodeMessage(nil, 0, m))
	}
	f.Add(EncodeMessage(nil, 0, &Rread{Data: make([]byte, 100)}))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, uint8(MsgRread), 0, 0})
	f.Add(append(EncodeMessage(nil, 0, &Rlerror{Error: 0}), EncodeMessage(nil, 1, &Rwalk{QIDs: make([]QID, 3)})...))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b, err := unet.SocketPair(false)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		go func() {
			buf := make([]byte, 8192)
			if _, _, _, _, err := readRaw(a, buf); err != nil {
				return
			}
			writeRaw(a, EncodeMessage(nil, NoTag, &Rversion{MSize: 8192, Version: Version}), nil)
			// Let the calls be issued (tags 0..2) before answering.
			for i := 0; i < 3; i++ {
				if _, _, _, _, err := readRaw(a, buf); err != nil {
					return
				}
			}
			a.Send([][]byte{data}, nil)
			a.Shutdown()
		}()
		c, err := NewClient(b, 8192)
		if err != nil {
			return
		}
		defer c.Close()
		file := &ClientFile{client: c, fid: 1}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		wg.Add(3)
		go func() { defer wg.Done(); file.GetAttr(ctx, AttrAll) }()
		go func() { defer wg.Done(); file.ReadAt(ctx, make([]byte, 64), 0) }()
		go func() { defer wg.Done(); file.Walk(ctx, []string{"a", "b"}) }()
		wg.Wait()
		if ctx.Err() != nil {
			t.Fatal("client calls hung on a hostile server")
		}
	})
}
