package p9

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/unet"
	"golang.org/x/sys/unix"
)

// maxTags bounds the requests a client has in flight at once. The last
// flushTags of them are reserved for Tflush, so cancelling every outstanding
// request at once cannot starve the flushes of tags.
const (
	maxTags   = 1024
	flushTags = 64
)

// ErrClientClosed is returned by calls on a client whose connection is gone.
var ErrClientClosed = errors.New("p9: client connection closed")

// call is one outstanding request.
type call struct {
	resp Message
	err  error
	done chan struct{}
	// asyncFID is set for a clunk nobody waits for (CloseAsync): its
	// completion releases the fid, the tag and the call itself.
	asyncFID FID
	async    bool
}

// rclunk receives the replies of asynchronous clunks (it has no fields, so
// sharing it is safe).
var rclunk Rclunk

// finishAsync completes an asynchronous clunk. The receive loop calls it,
// having removed cl from pending.
func (c *Client) finishAsync(tag Tag, cl *call) {
	c.releaseFID(cl.asyncFID)
	cl.async, cl.resp, cl.err = false, nil, nil
	c.callPool.Put(cl)
	c.tags <- tag
}

// Client is a 9P2000.L client. All methods are safe for concurrent use: each
// request gets its own tag and requests are pipelined over the one socket.
type Client struct {
	sock  *unet.Socket
	msize uint32

	tags      chan Tag
	flushTags chan Tag
	writeMu   sync.Mutex
	sendBuf   []byte  // guarded by writeMu
	enc       encoder // guarded by writeMu
	dec       decoder // used only by the receive loop

	mu      sync.Mutex
	pending [maxTags]*call
	dead    error // set once the receive loop stops

	fidMu    sync.Mutex
	nextFID  FID
	freeFIDs []FID

	callPool sync.Pool
	stopped  chan struct{}
}

// NewClient negotiates the protocol over sock (Tversion with msize; 0 or too
// large means DefaultMSize, or packetMSize on a seqpacket socket) and starts the receive loop. The client owns sock.
func NewClient(sock *unet.Socket, msize uint32) (*Client, error) {
	if limit := maxMSizeFor(sock); msize == 0 || msize > limit {
		msize = limit
	}
	if msize < minMSize {
		sock.Close()
		return nil, fmt.Errorf("p9: msize %d below minimum %d: %w", msize, minMSize, unix.EINVAL)
	}
	// Version is exchanged synchronously before any other traffic.
	out := EncodeMessage(nil, NoTag, &Tversion{MSize: msize, Version: Version})
	if err := writeRaw(sock, out, nil); err != nil {
		sock.Close()
		return nil, fmt.Errorf("p9: sending Tversion: %w", err)
	}
	buf := make([]byte, msize)
	t, tag, body, f, err := readRaw(sock, buf)
	if f != nil {
		f.Close()
	}
	if err != nil {
		sock.Close()
		return nil, fmt.Errorf("p9: reading Rversion: %w", err)
	}
	var rv Rversion
	if t == MsgRlerror {
		var rl Rlerror
		decodeInto(&rl, body)
		sock.Close()
		return nil, fmt.Errorf("p9: Tversion refused: %w", unix.Errno(rl.Error))
	}
	if t != MsgRversion || tag != NoTag {
		sock.Close()
		return nil, fmt.Errorf("%w: reply to Tversion has type %d tag %d", ErrMalformed, t, tag)
	}
	if err := decodeInto(&rv, body); err != nil {
		sock.Close()
		return nil, err
	}
	if rv.Version != Version || rv.MSize < minMSize || rv.MSize > msize {
		sock.Close()
		return nil, fmt.Errorf("p9: server offers version %q msize %d: %w", rv.Version, rv.MSize, unix.EPROTONOSUPPORT)
	}
	c := &Client{
		sock:      sock,
		msize:     rv.MSize,
		tags:      make(chan Tag, maxTags-flushTags),
		flushTags: make(chan Tag, flushTags),
		nextFID:   1,
		stopped:   make(chan struct{}),
	}
	for i := 0; i < maxTags-flushTags; i++ {
		c.tags <- Tag(i)
	}
	for i := maxTags - flushTags; i < maxTags; i++ {
		c.flushTags <- Tag(i)
	}
	c.callPool.New = func() any { return &call{done: make(chan struct{}, 1)} }
	go c.receive(buf[:rv.MSize])
	return c, nil
}

// MSize returns the negotiated maximum message size.
func (c *Client) MSize() uint32 { return c.msize }

// Close shuts the connection down; outstanding calls fail with
// ErrClientClosed.
func (c *Client) Close() error {
	c.sock.Shutdown()
	<-c.stopped
	return c.sock.Close()
}

func (c *Client) receive(buf []byte) {
	defer close(c.stopped)
	var err error
	for {
		var t MsgType
		var tag Tag
		var body []byte
		var f *os.File
		t, tag, body, f, err = readRaw(c.sock, buf)
		if err != nil {
			break
		}
		if err = c.deliver(t, tag, body, f); err != nil {
			break
		}
	}
	c.mu.Lock()
	if errors.Is(err, unet.ErrClosed) {
		c.dead = ErrClientClosed
	} else {
		c.dead = fmt.Errorf("%w: %w", ErrClientClosed, err)
	}
	for i, cl := range c.pending {
		if cl != nil {
			cl.err = c.dead
			c.pending[i] = nil
			if cl.async {
				c.finishAsync(Tag(i), cl)
				continue
			}
			cl.done <- struct{}{}
		}
	}
	c.mu.Unlock()
	c.sock.Shutdown()
}

// deliver decodes a reply into its waiting call. A reply for an unknown tag is
// a protocol error (the server may only answer what was asked).
func (c *Client) deliver(t MsgType, tag Tag, body []byte, f *os.File) error {
	if int(tag) >= maxTags {
		if f != nil {
			f.Close()
		}
		return fmt.Errorf("%w: reply with tag %d never issued", ErrMalformed, tag)
	}
	c.mu.Lock()
	cl := c.pending[tag]
	c.pending[tag] = nil
	c.mu.Unlock()
	if cl == nil {
		if f != nil {
			f.Close()
		}
		return fmt.Errorf("%w: reply with tag %d not in flight", ErrMalformed, tag)
	}
	switch {
	case t == MsgRlerror:
		var rl Rlerror
		if err := decodeWith(&c.dec, &rl, body); err != nil {
			cl.err = err
		} else if rl.Error == 0 {
			cl.err = unix.EIO
		} else {
			cl.err = unix.Errno(rl.Error)
		}
	case t == cl.resp.Type():
		cl.err = decodeWith(&c.dec, cl.resp, body)
	default:
		cl.err = fmt.Errorf("%w: reply type %d to a request expecting %d", ErrMalformed, t, cl.resp.Type())
	}
	if fm, ok := cl.resp.(fdMessage); ok && cl.err == nil {
		fm.setFile(f)
	} else if f != nil {
		f.Close()
	}
	if cl.async {
		if cl.err != nil {
			log.Debugf("p9: clunk of fid %d: %v", cl.asyncFID, cl.err)
		}
		c.finishAsync(tag, cl)
		return nil
	}
	cl.done <- struct{}{}
	return nil
}

// rpc sends req and waits for the reply in resp. If ctx is cancelled first,
// it sends Tflush and waits for Rflush; if the reply arrived before that, the
// request took effect and its result is returned, else ctx.Err().
func (c *Client) rpc(ctx context.Context, req, resp Message) error {
	return c.rpcTags(ctx, c.tags, req, resp)
}

func (c *Client) rpcTags(ctx context.Context, tags chan Tag, req, resp Message) error {
	p, err := c.start(ctx, tags, req, resp)
	if err != nil {
		return err
	}
	return c.wait(ctx, tags, p)
}

// inflight is a sent request whose reply is awaited with wait.
type inflight struct {
	tag Tag
	cl  *call
}

// start sends req, its reply to be decoded into resp; wait collects it.
// Several requests may be started before waiting, which saves round trips
// when the server serves them in order (see Server).
func (c *Client) start(ctx context.Context, tags chan Tag, req, resp Message) (inflight, error) {
	var tag Tag
	select {
	case tag = <-tags:
	case <-ctx.Done():
		return inflight{}, ctx.Err()
	case <-c.stopped:
		return inflight{}, ErrClientClosed
	}
	cl := c.callPool.Get().(*call)
	cl.resp, cl.err = resp, nil
	c.mu.Lock()
	if c.dead != nil {
		err := c.dead
		c.mu.Unlock()
		tags <- tag
		c.callPool.Put(cl)
		return inflight{}, err
	}
	c.pending[tag] = cl
	c.mu.Unlock()

	if err := c.send(tag, req); err != nil {
		c.mu.Lock()
		sent := c.pending[tag] == cl
		c.pending[tag] = nil
		c.mu.Unlock()
		if !sent { // the receive loop failed it meanwhile
			<-cl.done
		}
		tags <- tag
		cl.resp = nil
		c.callPool.Put(cl)
		return inflight{}, err
	}
	return inflight{tag: tag, cl: cl}, nil
}

// wait returns the result of a started request, flushing it if ctx is
// cancelled first.
func (c *Client) wait(ctx context.Context, tags chan Tag, p inflight) error {
	var err error
	select {
	case <-p.cl.done:
		err = p.cl.err
	case <-ctx.Done():
		err = c.flush(p.tag, p.cl, ctx.Err())
	}
	p.cl.resp = nil
	c.callPool.Put(p.cl)
	tags <- p.tag
	return err
}

// flush abandons the request with tag oldTag.
func (c *Client) flush(oldTag Tag, cl *call, ctxErr error) error {
	ferr := c.rpcTags(context.Background(), c.flushTags, &Tflush{OldTag: oldTag}, &Rflush{})
	select {
	case <-cl.done:
		return cl.err // answered before Rflush: the request took effect
	default:
	}
	if ferr != nil {
		// No Rflush means the connection is gone; the receive loop has failed
		// or will fail every pending call, including this one.
		<-cl.done
		return cl.err
	}
	// Rflush came and the request was not answered: it never will be.
	c.mu.Lock()
	c.pending[oldTag] = nil
	c.mu.Unlock()
	return ctxErr
}

func (c *Client) send(tag Tag, req Message) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.sendBuf = encodeWith(&c.enc, c.sendBuf[:0], tag, req)
	if uint32(len(c.sendBuf)) > c.msize {
		return fmt.Errorf("p9: %T of %d bytes exceeds msize %d: %w", req, len(c.sendBuf), c.msize, unix.EMSGSIZE)
	}
	if err := writeRaw(c.sock, c.sendBuf, nil); err != nil {
		return fmt.Errorf("p9: send: %w", err)
	}
	if cap(c.sendBuf) > 64<<10 {
		c.sendBuf = nil // don't pin a large write buffer
	}
	return nil
}

func (c *Client) newFID() FID {
	c.fidMu.Lock()
	defer c.fidMu.Unlock()
	if n := len(c.freeFIDs); n > 0 {
		fid := c.freeFIDs[n-1]
		c.freeFIDs = c.freeFIDs[:n-1]
		return fid
	}
	fid := c.nextFID
	c.nextFID++
	return fid
}

func (c *Client) releaseFID(fid FID) {
	c.fidMu.Lock()
	c.freeFIDs = append(c.freeFIDs, fid)
	c.fidMu.Unlock()
}

// ClientFile is a fid held by a client.
type ClientFile struct {
	client *Client
	fid    FID
	closed atomic.Bool
}

// FID returns the wire fid.
func (f *ClientFile) FID() FID { return f.fid }

// Attach binds a new fid to the root of the tree attachName as user uid.
func (c *Client) Attach(ctx context.Context, attachName string, uid UID) (*ClientFile, QID, error) {
	fid := c.newFID()
	var r Rattach
	if err := c.rpc(ctx, &Tattach{FID: fid, AuthFID: NoFID, AttachName: attachName, UID: uid}, &r); err != nil {
		c.releaseFID(fid)
		return nil, QID{}, fmt.Errorf("p9: attach %q: %w", attachName, err)
	}
	return &ClientFile{client: c, fid: fid}, r.QID, nil
}

// Walk walks names (at most MaxWalkElements) and returns the QIDs of the
// components resolved. The new file is returned only if every name resolved;
// a walk that fails on its first name returns that error, a later failure
// returns the shorter QID list and ENOENT.
func (f *ClientFile) Walk(ctx context.Context, names []string) ([]QID, *ClientFile, error) {
	if len(names) > MaxWalkElements {
		return nil, nil, unix.ENAMETOOLONG
	}
	c := f.client
	fid := c.newFID()
	var r Rwalk
	if err := c.rpc(ctx, &Twalk{FID: f.fid, NewFID: fid, Names: names}, &r); err != nil {
		c.releaseFID(fid)
		return nil, nil, err
	}
	if len(r.QIDs) != len(names) {
		c.releaseFID(fid)
		if len(r.QIDs) > len(names) {
			return nil, nil, fmt.Errorf("%w: walk of %d names returned %d qids", ErrMalformed, len(names), len(r.QIDs))
		}
		return r.QIDs, nil, unix.ENOENT
	}
	return r.QIDs, &ClientFile{client: c, fid: fid}, nil
}

// Clone returns a new fid for the same file.
func (f *ClientFile) Clone(ctx context.Context) (*ClientFile, error) {
	_, nf, err := f.Walk(ctx, nil)
	return nf, err
}

// WalkGetAttr walks names and fetches the attributes of the result, in one
// round trip (Twalkgetattr).
func (f *ClientFile) WalkGetAttr(ctx context.Context, names []string, mask AttrMask) (*ClientFile, QID, AttrMask, Attr, error) {
	if len(names) > MaxWalkElements {
		return nil, QID{}, 0, Attr{}, unix.ENAMETOOLONG
	}
	c := f.client
	fid := c.newFID()
	var r Rwalkgetattr
	if err := c.rpc(ctx, &Twalkgetattr{Walk: Twalk{FID: f.fid, NewFID: fid, Names: names}, Mask: mask}, &r); err != nil {
		c.releaseFID(fid)
		return nil, QID{}, 0, Attr{}, err
	}
	if len(r.Walk.QIDs) != len(names) {
		c.releaseFID(fid)
		if len(r.Walk.QIDs) > len(names) {
			return nil, QID{}, 0, Attr{}, fmt.Errorf("%w: walk of %d names returned %d qids", ErrMalformed, len(names), len(r.Walk.QIDs))
		}
		return nil, QID{}, 0, Attr{}, unix.ENOENT
	}
	return &ClientFile{client: c, fid: fid}, r.Attr.QID, r.Attr.Valid, r.Attr.Attr, nil
}

// GetAttr fetches the attributes selected by mask.
func (f *ClientFile) GetAttr(ctx context.Context, mask AttrMask) (QID, AttrMask, Attr, error) {
	var r Rgetattr
	if err := f.client.rpc(ctx, &Tgetattr{FID: f.fid, Mask: mask}, &r); err != nil {
		return QID{}, 0, Attr{}, err
	}
	return r.QID, r.Valid, r.Attr, nil
}

// SetAttr changes the attributes selected by valid.
func (f *ClientFile) SetAttr(ctx context.Context, valid SetAttrMask, attr SetAttr) error {
	return f.client.rpc(ctx, &Tsetattr{FID: f.fid, Valid: valid, Attr: attr}, &Rsetattr{})
}

// Open opens the fid. The returned host file, if not nil, is a descriptor
// for the same open file donated by the server; the caller owns it.
func (f *ClientFile) Open(ctx context.Context, flags OpenFlags) (QID, uint32, *os.File, error) {
	var r Rlopen
	if err := f.client.rpc(ctx, &Tlopen{FID: f.fid, Flags: flags}, &r); err != nil {
		return QID{}, 0, nil, err
	}
	return r.QID, r.IOUnit, r.File, nil
}

// CloneOpen opens a new fid for f's file, leaving f as it is: Clone then
// Open in one round trip. It pipelines the Tlopen of the new fid behind the
// Twalk that makes it, which the Server allows because it serves Twalk
// before reading the next request.
func (f *ClientFile) CloneOpen(ctx context.Context, flags OpenFlags) (*ClientFile, QID, uint32, *os.File, error) {
	c := f.client
	fid := c.newFID()
	var rw Rwalk
	var ro Rlopen
	w, err := c.start(ctx, c.tags, &Twalk{FID: f.fid, NewFID: fid}, &rw)
	if err != nil {
		c.releaseFID(fid)
		return nil, QID{}, 0, nil, err
	}
	o, oerr := c.start(ctx, c.tags, &Tlopen{FID: fid, Flags: flags}, &ro)
	werr := c.wait(ctx, c.tags, w)
	if oerr == nil {
		oerr = c.wait(ctx, c.tags, o)
	}
	if werr == nil && len(rw.QIDs) != 0 {
		werr = fmt.Errorf("%w: clone returned %d qids", ErrMalformed, len(rw.QIDs))
	}
	switch {
	case werr == nil && oerr == nil:
		return &ClientFile{client: c, fid: fid}, ro.QID, ro.IOUnit, ro.File, nil
	case oerr == nil || werr == nil:
		// The fid exists (the open succeeded, so the walk did): drop it.
		if ro.File != nil {
			ro.File.Close()
		}
		(&ClientFile{client: c, fid: fid}).Close(context.Background())
		if werr != nil {
			return nil, QID{}, 0, nil, werr
		}
		return nil, QID{}, 0, nil, oerr
	default:
		c.releaseFID(fid)
		return nil, QID{}, 0, nil, werr
	}
}

// Create creates and opens name in the directory f; f then names the new
// file. The host file is as for Open.
func (f *ClientFile) Create(ctx context.Context, name string, flags OpenFlags, mode uint32, gid GID) (QID, uint32, *os.File, error) {
	var r Rlcreate
	if err := f.client.rpc(ctx, &Tlcreate{FID: f.fid, Name: name, Flags: flags, Mode: mode, GID: gid}, &r); err != nil {
		return QID{}, 0, nil, err
	}
	return r.QID, r.IOUnit, r.File, nil
}

// ReadAt reads into p at offset, issuing as many Tread as msize requires. It
// returns fewer than len(p) bytes only at end of file or on error.
func (f *ClientFile) ReadAt(ctx context.Context, p []byte, offset uint64) (int, error) {
	limit := int(f.client.msize - readOverhead)
	done := 0
	for done < len(p) {
		chunk := p[done:min(len(p), done+limit)]
		r := Rread{Data: chunk[:0:len(chunk)]}
		if err := f.client.rpc(ctx, &Tread{FID: f.fid, Offset: offset + uint64(done), Count: uint32(len(chunk))}, &r); err != nil {
			return done, err
		}
		if len(r.Data) > len(chunk) {
			return done, fmt.Errorf("%w: Rread of %d bytes for %d asked", ErrMalformed, len(r.Data), len(chunk))
		}
		done += len(r.Data)
		if len(r.Data) < len(chunk) {
			break
		}
	}
	return done, nil
}

// WriteAt writes p at offset in msize-bounded Twrite requests.
func (f *ClientFile) WriteAt(ctx context.Context, p []byte, offset uint64) (int, error) {
	limit := int(f.client.msize - writeOverhead)
	done := 0
	for done < len(p) || len(p) == 0 {
		chunk := p[done:min(len(p), done+limit)]
		var r Rwrite
		if err := f.client.rpc(ctx, &Twrite{FID: f.fid, Offset: offset + uint64(done), Data: chunk}, &r); err != nil {
			return done, err
		}
		if int(r.Count) > len(chunk) {
			return done, fmt.Errorf("%w: Rwrite of %d bytes for %d sent", ErrMalformed, r.Count, len(chunk))
		}
		done += int(r.Count)
		if int(r.Count) < len(chunk) || len(p) == 0 {
			break
		}
	}
	return done, nil
}

// Mkdir creates directory name in f.
func (f *ClientFile) Mkdir(ctx context.Context, name string, mode uint32, gid GID) (QID, error) {
	var r Rmkdir
	err := f.client.rpc(ctx, &Tmkdir{DirFID: f.fid, Name: name, Mode: mode, GID: gid}, &r)
	return r.QID, err
}

// Symlink creates symlink name -> target in f.
func (f *ClientFile) Symlink(ctx context.Context, name, target string, gid GID) (QID, error) {
	var r Rsymlink
	err := f.client.rpc(ctx, &Tsymlink{FID: f.fid, Name: name, Target: target, GID: gid}, &r)
	return r.QID, err
}

// Mknod creates a node name in f.
func (f *ClientFile) Mknod(ctx context.Context, name string, mode, major, minor uint32, gid GID) (QID, error) {
	var r Rmknod
	err := f.client.rpc(ctx, &Tmknod{DirFID: f.fid, Name: name, Mode: mode, Major: major, Minor: minor, GID: gid}, &r)
	return r.QID, err
}

// Link creates name in directory f as a hard link to target.
func (f *ClientFile) Link(ctx context.Context, target *ClientFile, name string) error {
	return f.client.rpc(ctx, &Tlink{DirFID: f.fid, FID: target.fid, Name: name}, &Rlink{})
}

// Rename moves f to newName in newDir.
func (f *ClientFile) Rename(ctx context.Context, newDir *ClientFile, newName string) error {
	return f.client.rpc(ctx, &Trename{FID: f.fid, DirFID: newDir.fid, Name: newName}, &Rrename{})
}

// RenameAt renames oldName in directory f to newName in newDir.
func (f *ClientFile) RenameAt(ctx context.Context, oldName string, newDir *ClientFile, newName string) error {
	return f.client.rpc(ctx, &Trenameat{OldDirFID: f.fid, OldName: oldName, NewDirFID: newDir.fid, NewName: newName}, &Rrenameat{})
}

// UnlinkAt removes name from directory f (flags: 0 or AT_REMOVEDIR).
func (f *ClientFile) UnlinkAt(ctx context.Context, name string, flags uint32) error {
	return f.client.rpc(ctx, &Tunlinkat{DirFID: f.fid, Name: name, Flags: flags}, &Runlinkat{})
}

// Readlink returns a symlink's target.
func (f *ClientFile) Readlink(ctx context.Context) (string, error) {
	var r Rreadlink
	err := f.client.rpc(ctx, &Treadlink{FID: f.fid}, &r)
	return r.Target, err
}

// Readdir returns entries from cookie offset, at most count bytes' worth
// (bounded by msize). An empty result means the end of the directory.
func (f *ClientFile) Readdir(ctx context.Context, offset uint64, count uint32) ([]Dirent, error) {
	count = min(count, f.client.msize-readdirOverhead)
	var r Rreaddir
	err := f.client.rpc(ctx, &Treaddir{FID: f.fid, Offset: offset, Count: count}, &r)
	return r.Entries, err
}

// ReaddirEnd is Readdir that also reports whether the listing reached the
// end of the directory, which this project's Server lets the client infer:
// it fills each reply until the next entry cannot fit or the directory ends,
// so a reply with room left for a longest-named entry was the last. That
// spares the round trip of asking for an empty reply.
func (f *ClientFile) ReaddirEnd(ctx context.Context, offset uint64, count uint32) ([]Dirent, bool, error) {
	count = min(count, f.client.msize-readdirOverhead)
	ents, err := f.Readdir(ctx, offset, count)
	if err != nil || len(ents) == 0 {
		return ents, err == nil, err
	}
	used := 0
	for i := range ents {
		used += direntSize(ents[i].Name)
	}
	return ents, used+maxDirentSize <= int(count), nil
}

// StatFS returns filesystem statistics.
func (f *ClientFile) StatFS(ctx context.Context) (FSStat, error) {
	var r Rstatfs
	err := f.client.rpc(ctx, &Tstatfs{FID: f.fid}, &r)
	return r.FSStat, err
}

// FSync flushes an open file.
func (f *ClientFile) FSync(ctx context.Context, datasync bool) error {
	var ds uint32
	if datasync {
		ds = 1
	}
	return f.client.rpc(ctx, &Tfsync{FID: f.fid, Datasync: ds}, &Rfsync{})
}

// Lock acquires or releases a byte-range lock and returns a LockStatus.
func (f *ClientFile) Lock(ctx context.Context, l Lock) (uint8, error) {
	var r Rlock
	err := f.client.rpc(ctx, &Tlock{FID: f.fid, Lock: l}, &r)
	return r.Status, err
}

// GetLock returns the lock that would block l, or l with Type unlock.
func (f *ClientFile) GetLock(ctx context.Context, l Lock) (Lock, error) {
	var r Rgetlock
	err := f.client.rpc(ctx, &Tgetlock{FID: f.fid, Lock: l}, &r)
	return r.Lock, err
}

// GetXattr reads extended attribute name; an empty name lists the names as
// NUL-terminated strings.
func (f *ClientFile) GetXattr(ctx context.Context, name string) ([]byte, error) {
	c := f.client
	fid := c.newFID()
	var r Rxattrwalk
	if err := c.rpc(ctx, &Txattrwalk{FID: f.fid, NewFID: fid, Name: name}, &r); err != nil {
		c.releaseFID(fid)
		return nil, err
	}
	xf := &ClientFile{client: c, fid: fid}
	defer xf.Close(context.Background())
	if r.Size > MaxXattrSize {
		return nil, fmt.Errorf("%w: xattr size %d", ErrMalformed, r.Size)
	}
	buf := make([]byte, r.Size)
	n, err := xf.ReadAt(ctx, buf, 0)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// SetXattr sets extended attribute name to value (flags XATTR_CREATE or
// XATTR_REPLACE), via a cloned fid: Txattrcreate, Twrite, Tclunk.
func (f *ClientFile) SetXattr(ctx context.Context, name string, value []byte, flags uint32) error {
	xf, err := f.Clone(ctx)
	if err != nil {
		return err
	}
	if err := f.client.rpc(ctx, &Txattrcreate{FID: xf.fid, Name: name, AttrSize: uint64(len(value)), Flags: flags}, &Rxattrcreate{}); err != nil {
		xf.Close(context.Background())
		return err
	}
	if len(value) > 0 {
		if n, err := xf.WriteAt(ctx, value, 0); err != nil || n != len(value) {
			xf.Close(context.Background())
			if err == nil {
				err = unix.EIO
			}
			return err
		}
	}
	// The clunk commits the value, so its error is the operation's.
	return xf.Close(ctx)
}

// RemoveXattr removes extended attribute name: a Txattrcreate of size 0
// with the XattrRemove flag, committed by the clunk.
func (f *ClientFile) RemoveXattr(ctx context.Context, name string) error {
	xf, err := f.Clone(ctx)
	if err != nil {
		return err
	}
	if err := f.client.rpc(ctx, &Txattrcreate{FID: xf.fid, Name: name, Flags: XattrRemove}, &Rxattrcreate{}); err != nil {
		xf.Close(context.Background())
		return err
	}
	return xf.Close(ctx)
}

// Remove removes the file and clunks the fid, whatever the outcome.
func (f *ClientFile) Remove(ctx context.Context) error {
	if f.closed.Swap(true) {
		return unix.EBADF
	}
	err := f.client.rpc(ctx, &Tremove{FID: f.fid}, &Rremove{})
	f.client.releaseFID(f.fid)
	return err
}

// CloseAsync clunks the fid without waiting for the reply, for callers
// that have no use for its error: the fid number is reused only once the
// server has answered. Without a free tag it waits like Close.
func (f *ClientFile) CloseAsync() {
	if f.closed.Swap(true) {
		return
	}
	c := f.client
	var tag Tag
	select {
	case tag = <-c.tags:
	default:
		c.rpc(context.Background(), &Tclunk{FID: f.fid}, &Rclunk{})
		c.releaseFID(f.fid)
		return
	}
	cl := c.callPool.Get().(*call)
	cl.resp, cl.err, cl.async, cl.asyncFID = &rclunk, nil, true, f.fid
	c.mu.Lock()
	if c.dead != nil {
		c.mu.Unlock()
		cl.async, cl.resp = false, nil
		c.callPool.Put(cl)
		c.tags <- tag
		return
	}
	c.pending[tag] = cl
	c.mu.Unlock()
	if err := c.send(tag, &Tclunk{FID: f.fid}); err != nil {
		c.mu.Lock()
		mine := c.pending[tag] == cl
		c.pending[tag] = nil
		c.mu.Unlock()
		if mine {
			// Never sent, and the receive loop did not take it.
			c.finishAsync(tag, cl)
		}
	}
}

// Close clunks the fid. The fid is released even if the server reports an
// error (as 9P specifies for Tclunk).
func (f *ClientFile) Close(ctx context.Context) error {
	if f.closed.Swap(true) {
		return nil
	}
	err := f.client.rpc(ctx, &Tclunk{FID: f.fid}, &Rclunk{})
	f.client.releaseFID(f.fid)
	return err
}
