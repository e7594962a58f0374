package control

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/unet"
	"golang.org/x/sys/unix"
)

// SocketName is the control socket's name in the container's state
// directory.
const SocketName = "control.sock"

// viaDir runs f with a socket path for name in dir that always fits
// sun_path (108 bytes), however long dir is: the directory is opened and
// named through /proc/self/fd.
func viaDir(dir, name string, f func(path string) error) error {
	d, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", dir, err)
	}
	defer unix.Close(d)
	return f("/proc/self/fd/" + strconv.Itoa(d) + "/" + name)
}

// Listen creates the control socket in stateDir and returns its listening
// descriptor, to be handed to the Sentry (which cannot create it: it has
// no filesystem view).
func Listen(stateDir string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	err = viaDir(stateDir, SocketName, func(p string) error {
		return unix.Bind(fd, &unix.SockaddrUnix{Name: p})
	})
	if err == nil {
		// Only root (the runtime) may talk to the Sentry.
		err = os.Chmod(filepath.Join(stateDir, SocketName), 0o600)
	}
	if err == nil {
		err = unix.Listen(fd, 16)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("control socket in %s: %w", stateDir, err)
	}
	return os.NewFile(uintptr(fd), "control-listener"), nil
}

// ErrNoSandbox says nothing answers on the control socket: the Sentry
// has exited.
var ErrNoSandbox = errors.New("the sandbox is not running")

// Call sends req (with fds, which stay the caller's) to the Sentry whose
// control socket is in stateDir and returns its response. A response
// with an Error is returned as an *Error.
func Call(stateDir string, req *Request, fds []int) (*Response, error) {
	req.Version = Version
	data, err := Encode(req)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	err = viaDir(stateDir, SocketName, func(p string) error {
		return unix.Connect(fd, &unix.SockaddrUnix{Name: p})
	})
	if err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENOENT) {
			return nil, ErrNoSandbox
		}
		return nil, fmt.Errorf("connecting to the sandbox: %w", err)
	}
	s, err := unet.NewSocket(fd)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if _, err := s.Send([][]byte{data}, fds); err != nil {
		if errors.Is(err, unet.ErrClosed) {
			return nil, ErrNoSandbox
		}
		return nil, fmt.Errorf("sending %s to the sandbox: %w", req.Method, err)
	}
	buf := make([]byte, MaxMessageSize)
	n, _, err := s.Recv([][]byte{buf}, 0)
	if err != nil {
		if errors.Is(err, unet.ErrClosed) {
			return nil, ErrNoSandbox
		}
		return nil, fmt.Errorf("reading the sandbox's answer to %s: %w", req.Method, err)
	}
	resp, err := DecodeResponse(buf[:n])
	if err != nil {
		return nil, err
	}
	if resp.Error != "" {
		return resp, &Error{Msg: resp.Error, Errno: unix.Errno(resp.Errno)}
	}
	return resp, nil
}

// Error is a failure the Sentry reported.
type Error struct {
	Msg   string
	Errno unix.Errno
}

func (e *Error) Error() string { return e.Msg }

// Unwrap lets errors.Is(err, unix.ESRCH) work.
func (e *Error) Unwrap() error {
	if e.Errno == 0 {
		return nil
	}
	return e.Errno
}

// ErrorResponse makes the response for a failed request.
func ErrorResponse(err error) *Response {
	r := &Response{Version: Version, Error: err.Error()}
	var errno unix.Errno
	if errors.As(err, &errno) {
		r.Errno = int(errno)
	}
	return r
}

// Handler serves one validated request. fds are the request's
// descriptors, owned by the handler.
type Handler func(req *Request, fds []*os.File) *Response

// Server accepts control connections in the Sentry.
type Server struct {
	ln      *os.File
	handler Handler
	wg      sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	pending map[*unet.Socket]struct{} // connections not yet read
}

// Serve starts serving the listening socket ln (from Listen), each
// connection on its own goroutine, until Close.
func Serve(ln *os.File, h Handler) (*Server, error) {
	if err := unix.SetNonblock(int(ln.Fd()), true); err != nil {
		return nil, fmt.Errorf("control listener: %w", err)
	}
	// Re-wrap so the runtime poller owns the now non-blocking descriptor.
	fd, err := unix.FcntlInt(ln.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	ln.Close()
	if err != nil {
		return nil, fmt.Errorf("control listener: %w", err)
	}
	s := &Server{ln: os.NewFile(uintptr(fd), "control-listener"), handler: h, pending: make(map[*unet.Socket]struct{})}
	raw, err := s.ln.SyscallConn()
	if err != nil {
		s.ln.Close()
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			var cfd int
			var aerr error
			err := raw.Read(func(lfd uintptr) bool {
				cfd, _, aerr = unix.Accept4(int(lfd), unix.SOCK_CLOEXEC)
				return aerr != unix.EAGAIN
			})
			if err != nil {
				return // closed
			}
			if aerr != nil {
				if aerr == unix.EINTR || aerr == unix.ECONNABORTED {
					continue
				}
				log.Warningf("control: accept: %v", aerr)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			conn, err := unet.NewSocket(cfd)
			if err != nil {
				continue
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				conn.Close()
				return
			}
			s.pending[conn] = struct{}{}
			s.wg.Add(1)
			s.mu.Unlock()
			go s.serveConn(conn)
		}
	}()
	return s, nil
}

func (s *Server) serveConn(conn *unet.Socket) {
	defer s.wg.Done()
	defer conn.Close()
	buf := make([]byte, MaxMessageSize)
	n, fds, err := conn.Recv([][]byte{buf}, maxRequestFDs)
	fds = dropExtraFDs(buf[:n], fds) // network.go
	s.mu.Lock()
	delete(s.pending, conn)
	s.mu.Unlock()
	if err != nil {
		if !errors.Is(err, unet.ErrClosed) {
			s.reply(conn, ErrorResponse(err))
		}
		closeFDs(fds)
		return
	}
	req, err := DecodeRequest(buf[:n], len(fds))
	if err != nil {
		closeFDs(fds)
		s.reply(conn, ErrorResponse(err))
		return
	}
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), "control-fd")
	}
	resp := s.handler(req, files)
	if resp == nil {
		resp = &Response{}
	}
	resp.Version = Version
	s.reply(conn, resp)
}

func (s *Server) reply(conn *unet.Socket, resp *Response) {
	data, err := Encode(resp)
	if err != nil {
		data, _ = Encode(ErrorResponse(err))
	}
	conn.Send([][]byte{data}, nil)
}

// Close stops accepting, drops connections that have sent nothing, and
// waits (at most timeout) for requests being served to be answered.
func (s *Server) Close(timeout time.Duration) {
	s.mu.Lock()
	s.closed = true
	s.ln.Close()
	for c := range s.pending {
		c.Shutdown()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		log.Warningf("control: requests still in progress at shutdown")
	}
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
