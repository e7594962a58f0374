package p9

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/unet"
	"golang.org/x/sys/unix"
)

// maxConcurrentRequests bounds the handlers running per connection, which
// bounds the memory a client can pin with pipelined requests.
const maxConcurrentRequests = 64

// Server serves a tree of Files to 9P2000.L clients.
//
// Requests that only touch metadata (see inlineSafe: Twalk, Tgetattr,
// Treaddir…) are served on the connection's reading goroutine, so each takes
// effect before the next request is even read; this project's client relies
// on that to pipeline a Tlopen of a new fid behind the Twalk that makes it.
// Other requests run concurrently, as 9P allows.
type Server struct {
	attacher Attacher
	maxMSize uint32
}

// NewServer returns a server whose Tattach requests are answered by attacher.
func NewServer(attacher Attacher) *Server {
	return &Server{attacher: attacher, maxMSize: DefaultMSize}
}

// fidKind distinguishes ordinary fids from the two kinds of xattr fid.
type fidKind uint8

const (
	fidFile fidKind = iota
	fidXattrRead
	fidXattrWrite
)

// fidState is a reference-counted binding of a fid to a File: a request holds
// a reference while it runs, so a concurrent Tclunk only closes the File when
// the last request on it has finished.
type fidState struct {
	refs atomic.Int32
	file File
	uid  UID
	kind fidKind

	mu        sync.Mutex
	opened    bool
	openFlags OpenFlags

	// xattr fids
	xattrName  string
	xattrFlags uint32
	xattrData  []byte
	xattrSize  uint64
}

func (f *fidState) decRef() {
	if f.refs.Add(-1) == 0 {
		if f.kind == fidXattrWrite {
			f.file.(*xattrTarget).owner.decRef()
		}
		if f.kind == fidFile && f.file != nil {
			if err := f.file.Close(); err != nil {
				log.Debugf("p9: closing file: %v", err)
			}
		}
	}
}

// conn is one client connection.
type conn struct {
	server   *Server
	sock     *unet.Socket
	maxMSize uint32
	msize    atomic.Uint32

	writeMu sync.Mutex

	mu        sync.Mutex
	fids      map[FID]*fidState
	inflight  map[Tag]chan struct{}
	versioned bool

	bufPool     sync.Pool
	scratchPool sync.Pool
	sem         chan struct{}
	wg          sync.WaitGroup
}

// Handle serves one client on sock until the client disconnects, a protocol
// error occurs or ctx is cancelled. It closes sock and every fid's File before
// returning. A clean disconnect returns nil.
func (s *Server) Handle(ctx context.Context, sock *unet.Socket) error {
	c := &conn{
		server:   s,
		sock:     sock,
		fids:     make(map[FID]*fidState),
		inflight: make(map[Tag]chan struct{}),
		sem:      make(chan struct{}, maxConcurrentRequests),
	}
	c.maxMSize = min(s.maxMSize, maxMSizeFor(sock))
	c.msize.Store(c.maxMSize)
	c.bufPool.New = func() any { b := make([]byte, c.maxMSize); return &b }
	c.scratchPool.New = func() any { return &scratch{buf: make([]byte, 0, 512)} }
	stop := context.AfterFunc(ctx, func() { sock.Shutdown() })
	err := c.serve()
	stop()
	sock.Shutdown()
	c.wg.Wait()
	c.clunkAll()
	sock.Close()
	if errors.Is(err, unet.ErrClosed) {
		return nil
	}
	return err
}

func (c *conn) getBuf() *[]byte  { return c.bufPool.Get().(*[]byte) }
func (c *conn) putBuf(b *[]byte) { c.bufPool.Put(b) }

// inlineSafe reports whether requests of type t are served on the reading
// goroutine. These only touch file metadata, which never waits on another
// party (unlike opening or reading a FIFO or socket), so running them inline
// spares a goroutine hand-off and its wake-ups per request without letting
// one request hold up the connection indefinitely.
func inlineSafe(t MsgType) bool {
	switch t {
	case MsgTwalk, MsgTwalkgetattr, MsgTgetattr, MsgTreaddir, MsgTreadlink, MsgTclunk, MsgTstatfs, MsgTxattrwalk:
		return true
	}
	return false
}

func (c *conn) serve() error {
	rd := frameReader{buf: *c.getBuf()}
	defer func() { b := rd.buf; c.putBuf(&b) }()
	for {
		c.sem <- struct{}{}
		t, tag, body, err := rd.next(c.sock, c.msize.Load())
		if err != nil {
			<-c.sem
			return err
		}
		if t == MsgTversion {
			// Version resets the session, so run it alone: wait for every
			// request in flight first.
			<-c.sem
			c.wg.Wait()
			if err := c.handleVersion(tag, body); err != nil {
				return err
			}
			continue
		}
		c.mu.Lock()
		if !c.versioned || tag == NoTag {
			c.mu.Unlock()
			<-c.sem
			return fmt.Errorf("p9: message type %d tag %d before Tversion or with NOTAG", t, tag)
		}
		for {
			prev, dup := c.inflight[tag]
			if !dup {
				break
			}
			// The client may reuse a tag as soon as it has the reply, which
			// can overtake the handler's bookkeeping: wait for it to finish.
			c.mu.Unlock()
			<-prev
			c.mu.Lock()
		}
		if inlineSafe(t) {
			c.mu.Unlock()
			c.handle(t, tag, body)
			<-c.sem
			continue
		}
		done := make(chan struct{})
		c.inflight[tag] = done
		c.mu.Unlock()
		// body lives in the reader's buffer: hand that buffer to the handler
		// and read on in a fresh one.
		bufp := c.getBuf()
		old := rd.swap(*bufp)
		*bufp = old
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.handle(t, tag, body)
			c.putBuf(bufp)
			c.mu.Lock()
			delete(c.inflight, tag)
			c.mu.Unlock()
			close(done)
			<-c.sem
		}()
	}
}

func (c *conn) handleVersion(tag Tag, body []byte) error {
	var tv Tversion
	if err := decodeInto(&tv, body); err != nil {
		return err
	}
	c.clunkAll()
	reply := &Rversion{MSize: min(tv.MSize, c.maxMSize), Version: Version}
	ok := tv.Version == Version || strings.HasPrefix(tv.Version, Version+".")
	if !ok {
		reply.Version = "unknown"
	}
	if reply.MSize < minMSize {
		reply.Version = "unknown"
		ok = false
	}
	if err := c.send(tag, reply, nil); err != nil {
		return err
	}
	c.mu.Lock()
	c.versioned = ok
	c.mu.Unlock()
	if ok {
		c.msize.Store(reply.MSize)
	}
	return nil
}

func (c *conn) clunkAll() {
	c.mu.Lock()
	fids := c.fids
	c.fids = make(map[FID]*fidState)
	c.mu.Unlock()
	for _, f := range fids {
		f.decRef()
	}
}

// send encodes and writes a reply, attaching donate (then closed) if set.
func (c *conn) send(tag Tag, m Message, donate *os.File) error {
	sc := c.scratchPool.Get().(*scratch)
	sc.buf = encodeWith(&sc.enc, sc.buf[:0], tag, m)
	err := c.writeEncoded(sc.buf, donate)
	if cap(sc.buf) > 64<<10 {
		sc.buf = nil // don't keep large replies pinned
	}
	c.scratchPool.Put(sc)
	return err
}

// scratch is the per-request encoding and decoding state, pooled so a
// request allocates neither.
type scratch struct {
	buf []byte
	enc encoder
	dec decoder
}

func (c *conn) writeEncoded(out []byte, donate *os.File) error {
	if uint32(len(out)) > c.msize.Load() {
		// A reply that cannot fit is a server bug; tell the client rather
		// than send something it must reject.
		out = EncodeMessage(out[:0], Tag(binary.LittleEndian.Uint16(out[5:])), &Rlerror{Error: uint32(unix.EMSGSIZE)})
		donate = nil
	}
	c.writeMu.Lock()
	err := writeRaw(c.sock, out, donate)
	c.writeMu.Unlock()
	if donate != nil {
		donate.Close()
	}
	return err
}

func (c *conn) lookup(fid FID) (*fidState, error) {
	c.mu.Lock()
	f, ok := c.fids[fid]
	if ok {
		f.refs.Add(1)
	}
	c.mu.Unlock()
	if !ok {
		return nil, unix.EBADF
	}
	return f, nil
}

// lookupFile is lookup restricted to ordinary fids.
func (c *conn) lookupFile(fid FID) (*fidState, error) {
	f, err := c.lookup(fid)
	if err != nil {
		return nil, err
	}
	if f.kind != fidFile {
		f.decRef()
		return nil, unix.EINVAL
	}
	return f, nil
}

// install binds fid to f (taking over the caller's reference). An existing
// binding is an error unless replace is set.
func (c *conn) install(fid FID, f *fidState, replace bool) error {
	if fid == NoFID {
		return unix.EBADF
	}
	c.mu.Lock()
	old, exists := c.fids[fid]
	if exists && !replace {
		c.mu.Unlock()
		return unix.EBADF
	}
	c.fids[fid] = f
	c.mu.Unlock()
	if exists {
		old.decRef()
	}
	return nil
}

func (c *conn) remove(fid FID) (*fidState, bool) {
	c.mu.Lock()
	f, ok := c.fids[fid]
	delete(c.fids, fid)
	c.mu.Unlock()
	return f, ok
}

func newFidState(file File, uid UID) *fidState {
	f := &fidState{file: file, uid: uid}
	f.refs.Store(1)
	return f
}

// handle runs one request and sends its reply.
func (c *conn) handle(t MsgType, tag Tag, body []byte) {
	if t == MsgTread {
		c.handleRead(tag, body)
		return
	}
	req := newMessage(t)
	var err error
	if req == nil {
		err = fmt.Errorf("%w: unknown message type %d", ErrMalformed, t)
	} else {
		sc := c.scratchPool.Get().(*scratch)
		err = decodeWith(&sc.dec, req, body)
		sc.dec = decoder{}
		c.scratchPool.Put(sc)
	}
	var reply Message
	var donate *os.File
	if err == nil {
		reply, donate, err = c.dispatch(req)
	} else {
		log.Debugf("p9: %v", err)
		err = unix.EINVAL
	}
	if err != nil {
		reply = &Rlerror{Error: uint32(Errno(err))}
	}
	if err := c.send(tag, reply, donate); err != nil {
		log.Debugf("p9: sending reply: %v", err)
	}
}

// handleRead reads straight into the reply buffer, avoiding a copy.
func (c *conn) handleRead(tag Tag, body []byte) {
	var req Tread
	err := decodeInto(&req, body)
	if err != nil {
		err = unix.EINVAL
	}
	bufp := c.getBuf()
	defer c.putBuf(bufp)
	out := (*bufp)[:cap(*bufp)]
	var n int
	if err == nil {
		limit := c.msize.Load() - readOverhead
		count := min(req.Count, limit)
		n, err = c.read(&req, out[readOverhead:readOverhead+int(count)])
	}
	if err != nil {
		c.send(tag, &Rlerror{Error: uint32(Errno(err))}, nil)
		return
	}
	size := readOverhead + n
	binary.LittleEndian.PutUint32(out, uint32(size))
	out[4] = uint8(MsgRread)
	binary.LittleEndian.PutUint16(out[5:], uint16(tag))
	binary.LittleEndian.PutUint32(out[HeaderSize:], uint32(n))
	if err := c.writeEncoded(out[:size], nil); err != nil {
		log.Debugf("p9: sending Rread: %v", err)
	}
}

func (c *conn) read(req *Tread, p []byte) (int, error) {
	f, err := c.lookup(req.FID)
	if err != nil {
		return 0, err
	}
	defer f.decRef()
	switch f.kind {
	case fidXattrRead:
		if req.Offset >= uint64(len(f.xattrData)) {
			return 0, nil
		}
		return copy(p, f.xattrData[req.Offset:]), nil
	case fidXattrWrite:
		return 0, unix.EBADF
	}
	f.mu.Lock()
	opened, flags := f.opened, f.openFlags
	f.mu.Unlock()
	if !opened || flags.AccessMode() == unix.O_WRONLY {
		return 0, unix.EBADF
	}
	n, err := f.file.ReadAt(p, req.Offset)
	if n > len(p) || n < 0 {
		return 0, unix.EIO
	}
	return n, err
}

func (c *conn) dispatch(req Message) (Message, *os.File, error) {
	switch m := req.(type) {
	case *Tauth:
		return nil, nil, unix.EOPNOTSUPP
	case *Tattach:
		return c.attach(m)
	case *Tflush:
		c.mu.Lock()
		done, ok := c.inflight[m.OldTag]
		c.mu.Unlock()
		if ok {
			<-done
		}
		return &Rflush{}, nil, nil
	case *Twalk:
		return c.walk(m)
	case *Twalkgetattr:
		return c.walkGetattr(m)
	case *Tclunk:
		f, ok := c.remove(m.FID)
		if !ok {
			return nil, nil, unix.EBADF
		}
		err := c.finishXattr(f)
		f.decRef()
		if err != nil {
			return nil, nil, err
		}
		return &Rclunk{}, nil, nil
	case *Tremove:
		f, ok := c.remove(m.FID)
		if !ok {
			return nil, nil, unix.EBADF
		}
		defer f.decRef()
		if f.kind != fidFile {
			return nil, nil, unix.EINVAL
		}
		if err := f.file.Remove(); err != nil {
			return nil, nil, err
		}
		return &Rremove{}, nil, nil
	case *Twrite:
		return c.write(m)
	case *Txattrwalk:
		return c.xattrWalk(m)
	case *Txattrcreate:
		return c.xattrCreate(m)
	case *Tlopen:
		return c.open(m)
	case *Tlcreate:
		return c.create(m)
	case *Trenameat:
		return c.renameAt(m)
	case *Tlink:
		return c.link(m)
	case *Trename:
		return c.rename(m)
	}
	// The rest act on one ordinary fid.
	fid := fidOf(req)
	f, err := c.lookupFile(fid)
	if err != nil {
		return nil, nil, err
	}
	defer f.decRef()
	file := f.file
	switch m := req.(type) {
	case *Tgetattr:
		qid, valid, attr, err := file.GetAttr(m.Mask)
		if err != nil {
			return nil, nil, err
		}
		return &Rgetattr{Valid: valid, QID: qid, Attr: attr}, nil, nil
	case *Tsetattr:
		return &Rsetattr{}, nil, file.SetAttr(m.Valid, m.Attr)
	case *Tstatfs:
		st, err := file.StatFS()
		return &Rstatfs{FSStat: st}, nil, err
	case *Treadlink:
		target, err := file.Readlink()
		return &Rreadlink{Target: target}, nil, err
	case *Tfsync:
		if !f.isOpen() {
			return nil, nil, unix.EBADF
		}
		return &Rfsync{}, nil, file.FSync(m.Datasync != 0)
	case *Treaddir:
		return c.readdir(f, m)
	case *Tmkdir:
		if err := checkName(m.Name); err != nil {
			return nil, nil, err
		}
		qid, err := file.Mkdir(m.Name, m.Mode, f.uid, m.GID)
		return &Rmkdir{QID: qid}, nil, err
	case *Tsymlink:
		if err := checkName(m.Name); err != nil {
			return nil, nil, err
		}
		if m.Target == "" || strings.IndexByte(m.Target, 0) >= 0 {
			return nil, nil, unix.EINVAL
		}
		qid, err := file.Symlink(m.Name, m.Target, f.uid, m.GID)
		return &Rsymlink{QID: qid}, nil, err
	case *Tmknod:
		if err := checkName(m.Name); err != nil {
			return nil, nil, err
		}
		qid, err := file.Mknod(m.Name, m.Mode, m.Major, m.Minor, f.uid, m.GID)
		return &Rmknod{QID: qid}, nil, err
	case *Tunlinkat:
		if err := checkName(m.Name); err != nil {
			return nil, nil, err
		}
		return &Runlinkat{}, nil, file.UnlinkAt(m.Name, m.Flags)
	case *Tlock:
		if !f.isOpen() {
			return nil, nil, unix.EBADF
		}
		status, err := file.Lock(m.Lock)
		return &Rlock{Status: status}, nil, err
	case *Tgetlock:
		if !f.isOpen() {
			return nil, nil, unix.EBADF
		}
		l, err := file.GetLock(m.Lock)
		return &Rgetlock{Lock: l}, nil, err
	}
	return nil, nil, unix.EOPNOTSUPP
}

func (f *fidState) isOpen() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opened
}

// fidOf returns the fid of a single-fid request.
func fidOf(m Message) FID {
	switch m := m.(type) {
	case *Tgetattr:
		return m.FID
	case *Tsetattr:
		return m.FID
	case *Tstatfs:
		return m.FID
	case *Treadlink:
		return m.FID
	case *Tfsync:
		return m.FID
	case *Treaddir:
		return m.FID
	case *Tmkdir:
		return m.DirFID
	case *Tsymlink:
		return m.FID
	case *Tmknod:
		return m.DirFID
	case *Tunlinkat:
		return m.DirFID
	case *Tlock:
		return m.FID
	case *Tgetlock:
		return m.FID
	}
	return NoFID
}

func (c *conn) attach(m *Tattach) (Message, *os.File, error) {
	if m.AuthFID != NoFID {
		return nil, nil, unix.EINVAL
	}
	file, err := c.server.attacher.Attach(m.AttachName, m.UID)
	if err != nil {
		return nil, nil, err
	}
	qid, _, _, err := file.GetAttr(AttrMode)
	if err != nil {
		file.Close()
		return nil, nil, err
	}
	if err := c.install(m.FID, newFidState(file, m.UID), false); err != nil {
		file.Close()
		return nil, nil, err
	}
	return &Rattach{QID: qid}, nil, nil
}

func (c *conn) walk(m *Twalk) (Message, *os.File, error) {
	partial := false
	for i, name := range m.Names {
		if !ValidName(name) {
			if i == 0 {
				return nil, nil, unix.EINVAL
			}
			m.Names = m.Names[:i] // walk the valid prefix: a partial walk
			partial = true
			break
		}
	}
	f, err := c.lookupFile(m.FID)
	if err != nil {
		return nil, nil, err
	}
	defer f.decRef()
	if m.NewFID != m.FID {
		c.mu.Lock()
		_, taken := c.fids[m.NewFID]
		c.mu.Unlock()
		if taken {
			return nil, nil, unix.EBADF
		}
	}
	qids, newFile, err := f.file.Walk(m.Names)
	if err != nil {
		if newFile != nil {
			newFile.Close()
		}
		if len(qids) == 0 || len(m.Names) == 0 {
			return nil, nil, err
		}
		return &Rwalk{QIDs: qids}, nil, nil
	}
	if partial || newFile == nil || len(qids) != len(m.Names) {
		if newFile != nil {
			newFile.Close()
		}
		if len(qids) == 0 && len(m.Names) > 0 {
			return nil, nil, unix.ENOENT
		}
		return &Rwalk{QIDs: qids}, nil, nil
	}
	if err := c.install(m.NewFID, newFidState(newFile, f.uid), m.NewFID == m.FID); err != nil {
		newFile.Close()
		return nil, nil, err
	}
	return &Rwalk{QIDs: qids}, nil, nil
}

func (c *conn) walkGetattr(m *Twalkgetattr) (Message, *os.File, error) {
	want := len(m.Walk.Names)
	reply, _, err := c.walk(&m.Walk)
	if err != nil {
		return nil, nil, err
	}
	rw := reply.(*Rwalk)
	r := &Rwalkgetattr{Walk: *rw}
	if len(rw.QIDs) != want {
		return r, nil, nil // partial: no new fid, no attributes
	}
	f, err := c.lookupFile(m.Walk.NewFID)
	if err != nil {
		return nil, nil, err
	}
	qid, valid, attr, err := f.file.GetAttr(m.Mask)
	f.decRef()
	if err != nil {
		// Undo the walk so that failure leaves no new fid behind, as for
		// any other failed request (a walk in place has replaced its fid
		// already; that stays).
		if m.Walk.NewFID != m.Walk.FID {
			if nf, ok := c.remove(m.Walk.NewFID); ok {
				nf.decRef()
			}
		}
		return nil, nil, err
	}
	r.Attr = Rgetattr{Valid: valid, QID: qid, Attr: attr}
	return r, nil, nil
}

func (c *conn) open(m *Tlopen) (Message, *os.File, error) {
	f, err := c.lookupFile(m.FID)
	if err != nil {
		return nil, nil, err
	}
	defer f.decRef()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.opened {
		return nil, nil, unix.EINVAL
	}
	donate, qid, iounit, err := f.file.Open(m.Flags)
	if err != nil {
		return nil, nil, err
	}
	f.opened, f.openFlags = true, m.Flags
	return &Rlopen{QID: qid, IOUnit: iounit}, donate, nil
}

func (c *conn) create(m *Tlcreate) (Message, *os.File, error) {
	if err := checkName(m.Name); err != nil {
		return nil, nil, err
	}
	f, err := c.lookupFile(m.FID)
	if err != nil {
		return nil, nil, err
	}
	defer f.decRef()
	if f.isOpen() {
		return nil, nil, unix.EINVAL
	}
	newFile, donate, qid, iounit, err := f.file.Create(m.Name, m.Flags, m.Mode, f.uid, m.GID)
	if err != nil {
		return nil, nil, err
	}
	nf := newFidState(newFile, f.uid)
	nf.opened, nf.openFlags = true, m.Flags
	// The fid now names the created file.
	if err := c.install(m.FID, nf, true); err != nil {
		newFile.Close()
		if donate != nil {
			donate.Close()
		}
		return nil, nil, err
	}
	return &Rlcreate{QID: qid, IOUnit: iounit}, donate, nil
}

func (c *conn) write(m *Twrite) (Message, *os.File, error) {
	f, err := c.lookup(m.FID)
	if err != nil {
		return nil, nil, err
	}
	defer f.decRef()
	switch f.kind {
	case fidXattrWrite:
		f.mu.Lock()
		defer f.mu.Unlock()
		end := m.Offset + uint64(len(m.Data))
		if m.Offset != uint64(len(f.xattrData)) || end > f.xattrSize || end < m.Offset {
			return nil, nil, unix.EINVAL
		}
		f.xattrData = append(f.xattrData, m.Data...)
		return &Rwrite{Count: uint32(len(m.Data))}, nil, nil
	case fidXattrRead:
		return nil, nil, unix.EBADF
	}
	f.mu.Lock()
	opened, flags := f.opened, f.openFlags
	f.mu.Unlock()
	if !opened || flags.AccessMode() == unix.O_RDONLY {
		return nil, nil, unix.EBADF
	}
	n, err := f.file.WriteAt(m.Data, m.Offset)
	if err != nil && n <= 0 {
		return nil, nil, err
	}
	return &Rwrite{Count: uint32(max(n, 0))}, nil, nil
}

func (c *conn) readdir(f *fidState, m *Treaddir) (Message, *os.File, error) {
	if !f.isOpen() {
		return nil, nil, unix.EBADF
	}
	count := min(m.Count, c.msize.Load()-readdirOverhead)
	ents, err := f.file.Readdir(m.Offset, count)
	if err != nil {
		return nil, nil, err
	}
	used := 0
	for i := range ents {
		sz := direntSize(ents[i].Name)
		if used+sz > int(count) || len(ents[i].Name) > 0xffff {
			if i == 0 {
				// An empty reply means end of directory; too small a
				// buffer is an error instead, as for getdents(2).
				return nil, nil, unix.EINVAL
			}
			return &Rreaddir{Entries: ents[:i]}, nil, nil
		}
		used += sz
	}
	// Fill the reply while a longest-named entry could still fit, so that a
	// reply with that much room left is known to be the last
	// (ClientFile.ReaddirEnd): a host getdents here is far cheaper than the
	// client's round trip to find the end.
	for len(ents) > 0 && used+maxDirentSize <= int(count) {
		more, err := f.file.Readdir(ents[len(ents)-1].Offset, count-uint32(used))
		if err != nil {
			// A short reply would read as the end: fail the request.
			return nil, nil, err
		}
		if len(more) == 0 {
			break
		}
		for i := range more {
			sz := direntSize(more[i].Name)
			if used+sz > int(count) || len(more[i].Name) > 0xffff {
				return &Rreaddir{Entries: ents}, nil, nil
			}
			ents = append(ents, more[i])
			used += sz
		}
	}
	return &Rreaddir{Entries: ents}, nil, nil
}

func (c *conn) xattrWalk(m *Txattrwalk) (Message, *os.File, error) {
	f, err := c.lookupFile(m.FID)
	if err != nil {
		return nil, nil, err
	}
	defer f.decRef()
	var data []byte
	if m.Name == "" {
		names, err := f.file.ListXattr()
		if err != nil {
			return nil, nil, err
		}
		for _, n := range names {
			data = append(data, n...)
			data = append(data, 0)
		}
	} else {
		if data, err = f.file.GetXattr(m.Name); err != nil {
			return nil, nil, err
		}
	}
	if len(data) > MaxXattrSize {
		return nil, nil, unix.E2BIG
	}
	nf := &fidState{kind: fidXattrRead, xattrData: data, uid: f.uid}
	nf.refs.Store(1)
	if err := c.install(m.NewFID, nf, false); err != nil {
		return nil, nil, err
	}
	return &Rxattrwalk{Size: uint64(len(data))}, nil, nil
}

func (c *conn) xattrCreate(m *Txattrcreate) (Message, *os.File, error) {
	if m.AttrSize > MaxXattrSize {
		return nil, nil, unix.E2BIG
	}
	if m.Name == "" || strings.IndexByte(m.Name, 0) >= 0 {
		return nil, nil, unix.EINVAL
	}
	if m.Flags&XattrRemove != 0 && m.AttrSize != 0 {
		return nil, nil, unix.EINVAL
	}
	f, err := c.lookupFile(m.FID)
	if err != nil {
		return nil, nil, err
	}
	defer f.decRef()
	// The fid becomes an xattr fid; it keeps a reference on the file so the
	// value can be set at clunk.
	f.refs.Add(1)
	nf := &fidState{
		kind: fidXattrWrite, file: f.file, uid: f.uid,
		xattrName: m.Name, xattrFlags: m.Flags, xattrSize: m.AttrSize,
		xattrData: make([]byte, 0, m.AttrSize),
	}
	nf.refs.Store(1)
	nf.file = &xattrTarget{File: f.file, owner: f}
	if err := c.install(m.FID, nf, true); err != nil {
		f.decRef()
		return nil, nil, err
	}
	return &Rxattrcreate{}, nil, nil
}

// xattrTarget lets an xattr-create fid keep its original fid state alive.
type xattrTarget struct {
	File
	owner *fidState
}

// finishXattr commits a pending Txattrcreate when its fid is clunked.
func (c *conn) finishXattr(f *fidState) error {
	if f.kind != fidXattrWrite {
		return nil
	}
	t := f.file.(*xattrTarget)
	f.mu.Lock()
	data := f.xattrData
	f.mu.Unlock()
	if uint64(len(data)) != f.xattrSize {
		return unix.EINVAL
	}
	if f.xattrFlags&XattrRemove != 0 {
		r, ok := t.File.(XattrRemover)
		if !ok {
			return unix.EOPNOTSUPP
		}
		return r.RemoveXattr(f.xattrName)
	}
	return t.File.SetXattr(f.xattrName, data, f.xattrFlags)
}

func (c *conn) renameAt(m *Trenameat) (Message, *os.File, error) {
	if err := checkName(m.OldName); err != nil {
		return nil, nil, err
	}
	if err := checkName(m.NewName); err != nil {
		return nil, nil, err
	}
	oldDir, err := c.lookupFile(m.OldDirFID)
	if err != nil {
		return nil, nil, err
	}
	defer oldDir.decRef()
	newDir, err := c.lookupFile(m.NewDirFID)
	if err != nil {
		return nil, nil, err
	}
	defer newDir.decRef()
	return &Rrenameat{}, nil, oldDir.file.RenameAt(m.OldName, newDir.file, m.NewName)
}

func (c *conn) link(m *Tlink) (Message, *os.File, error) {
	if err := checkName(m.Name); err != nil {
		return nil, nil, err
	}
	dir, err := c.lookupFile(m.DirFID)
	if err != nil {
		return nil, nil, err
	}
	defer dir.decRef()
	target, err := c.lookupFile(m.FID)
	if err != nil {
		return nil, nil, err
	}
	defer target.decRef()
	return &Rlink{}, nil, dir.file.Link(target.file, m.Name)
}

func (c *conn) rename(m *Trename) (Message, *os.File, error) {
	if err := checkName(m.Name); err != nil {
		return nil, nil, err
	}
	f, err := c.lookupFile(m.FID)
	if err != nil {
		return nil, nil, err
	}
	defer f.decRef()
	dir, err := c.lookupFile(m.DirFID)
	if err != nil {
		return nil, nil, err
	}
	defer dir.decRef()
	return &Rrename{}, nil, f.file.Rename(dir.file, m.Name)
}
