package control

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestDecodeRequestValid(t *testing.T) {
	data := `{"version":1,"method":"exec","exec":{"args":["/bin/sh","-c","true"],"env":["A=b"],"cwd":"/tmp","uid":1,"gid":2,"capabilities":{"bounding":["CAP_KILL"]}}}`
	r, err := DecodeRequest([]byte(data), StdioFDs)
	if err != nil {
		t.Fatalf("DecodeRequest: %v", err)
	}
	if r.Method != MethodExec || r.Exec.Args[2] != "true" || r.Exec.UID != 1 || r.Exec.Cwd != "/tmp" {
		t.Errorf("decoded %+v", r.Exec)
	}
}

func TestDecodeRequestRejects(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		fds        int
		want       string
	}{
		{"version", `{"version":2,"method":"start"}`, 0, "version 2"},
		{"method", `{"version":1,"method":"reboot"}`, 0, "unknown control method"},
		{"unknown field", `{"version":1,"method":"start","x":1}`, 0, "unknown field"},
		{"trailing", `{"version":1,"method":"start"}{}`, 0, "trailing"},
		{"fds on start", `{"version":1,"method":"start"}`, 1, "descriptors"},
		{"exec without fds", `{"version":1,"method":"exec","exec":{"args":["a"]}}`, 0, "descriptors"},
		{"exec without args", `{"version":1,"method":"exec"}`, 3, "wrong arguments"},
		{"start with exec args", `{"version":1,"method":"start","exec":{"args":["a"]}}`, 0, "wrong arguments"},
		{"empty argv", `{"version":1,"method":"exec","exec":{"args":[]}}`, 3, "no arguments"},
		{"nul", `{"version":1,"method":"exec","exec":{"args":["a\u0000b"]}}`, 3, "NUL"},
		{"env", `{"version":1,"method":"exec","exec":{"args":["a"],"env":["noequals"]}}`, 3, "no '='"},
		{"cwd", `{"version":1,"method":"exec","exec":{"args":["a"],"cwd":"rel"}}`, 3, "not absolute"},
		{"cap", `{"version":1,"method":"exec","exec":{"args":["a"],"capabilities":{"effective":["CAP_NOPE"]}}}`, 3, "unknown capability"},
		{"signal 0", `{"version":1,"method":"signal","signal":{"signo":0}}`, 0, "invalid signal"},
		{"signal 65", `{"version":1,"method":"signal","signal":{"signo":65}}`, 0, "invalid signal"},
		{"signal all+pid", `{"version":1,"method":"signal","signal":{"signo":9,"pid":3,"all":true}}`, 0, "target"},
		{"wait negative", `{"version":1,"method":"wait","wait":{"pid":-1}}`, 0, "invalid pid"},
		{"not json", `hello`, 0, "malformed"},
		{"huge", `{"version":1,"method":"start","pad":"` + strings.Repeat("x", MaxMessageSize) + `"}`, 0, "exceeds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tc.data), tc.fds)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DecodeRequest(%.80s) = %v, want error containing %q", tc.data, err, tc.want)
			}
		})
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"version":1,"method":"start"}`), 0)
	f.Add([]byte(`{"version":1,"method":"exec","exec":{"args":["/bin/true"],"env":["A=1"],"cwd":"/","uid":0,"gid":0}}`), 3)
	f.Add([]byte(`{"version":1,"method":"signal","signal":{"signo":15,"all":true}}`), 0)
	f.Add([]byte(`{"version":1,"method":"wait","wait":{"pid":7}}`), 0)
	f.Add([]byte(`{"version":1,"method":"ps"}`), 0)
	f.Add([]byte(`{"version":1,"method":"exec","exec":{"args":["x"],"capabilities":{"ambient":["CAP_CHOWN"]}}}`), 3)
	f.Add([]byte(`[]`), 0)
	f.Fuzz(func(t *testing.T, data []byte, nfds int) {
		r, err := DecodeRequest(data, nfds)
		if err != nil {
			return
		}
		// Whatever is accepted satisfies the invariants the Sentry
		// relies on.
		if r.Version != Version || nfds != r.wantFDs() {
			t.Fatalf("accepted %+v with %d fds", r, nfds)
		}
		if r.Method == MethodExec && (len(r.Exec.Args) == 0 || len(r.Exec.Args) > MaxArgs || r.Exec.Args[0] == "") {
			t.Fatalf("accepted exec %+v", r.Exec)
		}
		if r.Method == MethodSignal && (r.Signal.Signo < 1 || r.Signal.Signo > 64) {
			t.Fatalf("accepted signal %+v", r.Signal)
		}
		if _, err := Encode(r); err != nil {
			t.Fatalf("re-encoding an accepted request: %v", err)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"version":1,"pid":3}`))
	f.Add([]byte(`{"version":1,"error":"x","errno":3}`))
	f.Add([]byte(`{"version":1,"processes":[{"pid":1,"ppid":0,"uid":0,"name":"sh"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeResponse(data)
		if err == nil && r.Version != Version {
			t.Fatalf("accepted version %d", r.Version)
		}
	})
}

func TestCallAndServe(t *testing.T) {
	dir := t.TempDir()
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	srv, err := Serve(ln, func(req *Request, fds []*os.File) *Response {
		switch req.Method {
		case MethodExec:
			// Write to the passed stdout to prove the descriptor arrived.
			fds[1].WriteString("hello from " + req.Exec.Args[0])
			for _, f := range fds {
				f.Close()
			}
			return &Response{PID: 42}
		case MethodSignal:
			return ErrorResponse(unix.ESRCH)
		}
		got <- string(req.Method)
		return &Response{}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(time.Second)

	if _, err := Call(dir, &Request{Method: MethodStart}, nil); err != nil {
		t.Fatalf("start: %v", err)
	}
	if m := <-got; m != "start" {
		t.Errorf("handler saw %q", m)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fd := int(w.Fd())
	resp, err := Call(dir, &Request{Method: MethodExec, Exec: &ExecArgs{Args: []string{"prog"}}}, []int{fd, fd, fd})
	w.Close()
	if err != nil || resp.PID != 42 {
		t.Fatalf("exec: %+v, %v", resp, err)
	}
	buf := make([]byte, 100)
	n, _ := r.Read(buf)
	if string(buf[:n]) != "hello from prog" {
		t.Errorf("read %q through the passed descriptor", buf[:n])
	}
	_, err = Call(dir, &Request{Method: MethodSignal, Signal: &SignalArgs{Signo: 9}}, nil)
	if !errors.Is(err, unix.ESRCH) {
		t.Errorf("signal: %v, want ESRCH", err)
	}
	// A request the decoder refuses is answered with an error, and the
	// server keeps serving.
	_, err = Call(dir, &Request{Method: "bogus"}, nil)
	if err == nil || !strings.Contains(err.Error(), "unknown control method") {
		t.Errorf("bogus method: %v", err)
	}
	if _, err := Call(dir, &Request{Method: MethodProcesses}, nil); err != nil {
		t.Errorf("ps after a bad request: %v", err)
	}
}

func TestCallWithoutServer(t *testing.T) {
	dir := t.TempDir()
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // the Sentry died
	if _, err := Call(dir, &Request{Method: MethodStart}, nil); !errors.Is(err, ErrNoSandbox) {
		t.Errorf("Call with no listener: %v, want ErrNoSandbox", err)
	}
}

func TestLongStateDir(t *testing.T) {
	dir := t.TempDir() + "/" + strings.Repeat("d", 200)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(dir)
	if err != nil {
		t.Fatalf("Listen in a %d-byte path: %v", len(dir), err)
	}
	srv, err := Serve(ln, func(*Request, []*os.File) *Response { return &Response{} })
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(time.Second)
	if _, err := Call(dir, &Request{Method: MethodStats}, nil); err != nil {
		t.Errorf("Call: %v", err)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// A hostile client: descriptors where none belong, more than allowed,
// a connection that never speaks. The server closes every descriptor it
// was sent and shuts down promptly.
func TestServerHostileClients(t *testing.T) {
	dir := t.TempDir()
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Serve(ln, func(req *Request, fds []*os.File) *Response {
		for _, f := range fds {
			f.Close()
		}
		return &Response{}
	})
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	before := openFDs(t)
	fd := int(r.Fd())
	if _, err := Call(dir, &Request{Method: MethodStart}, []int{fd}); err == nil || !strings.Contains(err.Error(), "descriptors") {
		t.Errorf("start with a descriptor: %v", err)
	}
	if _, err := Call(dir, &Request{Method: MethodExec, Exec: &ExecArgs{Args: []string{"x"}}}, []int{fd, fd, fd, fd, fd}); err != nil {
		t.Errorf("exec with 5 descriptors: %v (the extra ones are dropped, 3 kept)", err)
	}
	r.Close()
	// Every copy the server received is closed: the write end sees no
	// reader.
	if _, err := w.Write([]byte("x")); err == nil {
		t.Errorf("the server kept a copy of the pipe's read end")
	}
	w.Close()
	if after := openFDs(t); after > before {
		t.Errorf("%d descriptors leaked", after-before)
	}
	// A silent connection does not hold up Close.
	silent, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(silent)
	viaDir(dir, SocketName, func(p string) error { return unix.Connect(silent, &unix.SockaddrUnix{Name: p}) })
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	srv.Close(5 * time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with a silent client", d)
	}
}
