package bpf

// Differential tests: the same programs and inputs through this package and
// through the host kernel must agree.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	childProgramEnv = "CARAPACE_BPF_TEST_SECCOMP_PROGRAM"
	childArgsEnv    = "CARAPACE_BPF_TEST_SECCOMP_ARGS"
	childOpcodesEnv = "CARAPACE_BPF_TEST_SECCOMP_OPCODES"
	// testSyscall is a number no x86-64 syscall has: allowed, it fails
	// with ENOSYS, and the Go runtime never makes it.
	testSyscall     = 1000
	auditArchX86_64 = 0xc000003e
	retErrno        = 0x00050000
	retAllow        = 0x7fff0000
)

func TestMain(m *testing.M) {
	if os.Getenv(childOpcodesEnv) != "" {
		os.Exit(seccompOpcodesChild())
	}
	if prog := os.Getenv(childProgramEnv); prog != "" {
		os.Exit(seccompChild(prog, os.Getenv(childArgsEnv)))
	}
	os.Exit(m.Run())
}

type childResult struct {
	InstallErrno int         `json:"install_errno"`
	Results      [][2]uint64 `json:"results"` // return value, errno
}

// seccompChild installs a filter on its own thread and makes testSyscall
// with each argument vector, printing the results as JSON.
func seccompChild(progHex, argsJSON string) int {
	b, err := hex.DecodeString(progHex)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	insns, err := Decode(b)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	var args [][6]uint64
	if err := json.Unmarshal([]byte(argsJSON), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	runtime.LockOSThread() // the filter (no TSYNC) stays on this thread
	var out childResult
	if err := installOnThisThread(insns); err != nil {
		var errno unix.Errno
		if !errors.As(err, &errno) {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		out.InstallErrno = int(errno)
	} else {
		for _, a := range args {
			r, _, errno := unix.RawSyscall6(testSyscall, uintptr(a[0]), uintptr(a[1]), uintptr(a[2]), uintptr(a[3]), uintptr(a[4]), uintptr(a[5]))
			out.Results = append(out.Results, [2]uint64{uint64(r), uint64(errno)})
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		return 3
	}
	return 0
}

// opcodeProbe is a harmless seccomp program around one instruction: X is
// nonzero (so a division cannot return 0, KILL_THREAD) and every path
// allows.
func opcodeProbe(opCode uint16) []Instruction {
	return []Instruction{ldxImm(1), Stmt(opCode, 4), retK(retAllow)}
}

// probedOpcodes are the opcodes TestSeccompValidatorOpcodesMatchKernel
// tries: all but returns (whose verdict would apply to the child itself),
// plus some with bits beyond the low byte.
func probedOpcodes() []uint16 {
	var ops []uint16
	for op := range uint16(0x100) {
		if op&classMask != ClassReturn {
			ops = append(ops, op)
		}
	}
	return append(ops, 0x100|ClassLoad|SizeWord|ModeAbsolute, 0x8000|ClassALU|Add)
}

// seccompOpcodesChild installs opcodeProbe for each probed opcode on its
// own thread and prints which the kernel accepted. Accepted filters pile
// up, but each allows everything.
func seccompOpcodesChild() int {
	runtime.LockOSThread()
	accepted := map[uint16]bool{}
	for _, op := range probedOpcodes() {
		err := installOnThisThread(opcodeProbe(op))
		switch {
		case err == nil:
			accepted[op] = true
		case errors.Is(err, unix.EINVAL):
		default:
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(accepted); err != nil {
		return 3
	}
	return 0
}

func installOnThisThread(insns []Instruction) error {
	if len(insns) == 0 {
		return unix.EINVAL
	}
	filter := make([]unix.SockFilter, len(insns))
	for i, ins := range insns {
		filter[i] = unix.SockFilter{Code: ins.OpCode, Jt: ins.JumpIfTrue, Jf: ins.JumpIfFalse, K: ins.K}
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl: %w", err)
	}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return errno
	}
	return nil
}

// runSeccompChild runs a child that installs insns and makes testSyscall
// with each of args.
func runSeccompChild(insns []Instruction, args [][6]uint64) (childResult, error) {
	argsJSON, err := json.Marshal(args)
	if err != nil {
		return childResult{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.WaitDelay = time.Second
	cmd.Env = append(os.Environ(), childProgramEnv+"="+hex.EncodeToString(Encode(insns)), childArgsEnv+"="+string(argsJSON))
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		return childResult{}, fmt.Errorf("child: %w: %s", err, stderr)
	}
	var res childResult
	if err := json.Unmarshal(out, &res); err != nil {
		return childResult{}, fmt.Errorf("child output %q: %w", out, err)
	}
	return res, nil
}

// wrapForKernel makes a random seccomp program observable: it runs only for
// testSyscall (everything else is allowed so the Go runtime keeps working),
// and its result's low 12 bits come back as the syscall's errno. Every
// "ret a" becomes a jump to that epilogue, which keeps every offset valid.
func wrapForKernel(body []Instruction) []Instruction {
	n := len(body)
	out := []Instruction{
		ldAbs(SizeWord, 0),
		jmpK(JumpEqual, testSyscall, 1, 0),
		retK(retAllow),
	}
	for pc, ins := range body {
		if ins.OpCode == ClassReturn|ReturnA {
			ins = Stmt(ClassJump|JumpAlways, uint32(n-pc-1))
		}
		out = append(out, ins)
	}
	return append(out, aluK(And, 0xfff), aluK(Or, retErrno), retA())
}

// avoidKillThread replaces division and modulo by X: with X zero the
// program returns 0, SECCOMP_RET_KILL_THREAD, which would kill one thread
// of the Go child and hang it. The socket filter tests cover that case.
func avoidKillThread(insns []Instruction) {
	for i, ins := range insns {
		if ins.OpCode == ClassALU|Div|SourceX || ins.OpCode == ClassALU|Mod|SourceX {
			insns[i] = aluX(Add)
		}
	}
}

func randomArgs(r *rand.Rand) [6]uint64 {
	var a [6]uint64
	for i := range a {
		a[i] = uint64(interesting(r))<<32 | uint64(interesting(r))
	}
	return a
}

func TestSeccompFilterMatchesKernel(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("seccomp differential tests assume x86-64")
	}
	r := rand.New(rand.NewPCG(1, 2))
	const programs, inputsPerProgram = 48, 16
	type job struct {
		body []Instruction
		args [][6]uint64
	}
	var jobs []job
	for i := range programs {
		body := randomProgram(r, SeccompFilter, 2+r.IntN(40), 0)
		if i%4 == 3 {
			body = mutate(r, body) // also compare the validators
		}
		avoidKillThread(body)
		var args [][6]uint64
		for range inputsPerProgram {
			args = append(args, randomArgs(r))
		}
		jobs = append(jobs, job{body, args})
	}
	// A hand-written program covering every instruction kind seccomp allows.
	jobs = append(jobs, job{body: []Instruction{
		ldAbs(SizeWord, 16), Stmt(ClassStore, 0), ldAbs(SizeWord, 20), aluK(Or, 1), Stmt(ClassMisc|MiscTAX, 0),
		Stmt(ClassLoad|ModeMemory, 0), aluX(Div), Stmt(ClassLoadX|SizeWord|ModeLength, 0), aluX(Add),
		jmpK(JumpGreater, 0x10000, 0, 2), aluK(RightShift, 4), Stmt(ClassJump|JumpAlways, 1), Stmt(ClassALU|Neg, 0), retA(),
	}, args: [][6]uint64{{0x100000007, 0}, {0, 0}, {0xffffffff00000000, 0}, {0x12345678, 0}}})

	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			wrapped := wrapForKernel(j.body)
			p, ourErr := Validate(wrapped, SeccompFilter)
			res, err := runSeccompChild(wrapped, j.args)
			if err != nil {
				t.Errorf("program %d: %v", i, err)
				return
			}
			kernelOK := res.InstallErrno == 0
			if (ourErr == nil) != kernelOK {
				t.Errorf("program %d: we say %v, kernel install errno %d\n%s", i, ourErr, res.InstallErrno, Disassemble(wrapped))
				return
			}
			if !kernelOK {
				return
			}
			for k, a := range j.args {
				d := SeccompData{Nr: testSyscall, Arch: auditArchX86_64, Args: a}
				ours := p.RunSeccomp(&d)
				// ERRNO(n) makes the syscall return -n (0 for n == 0).
				want := uint64(-int64(ours & 0xfff))
				// Go reports -n as (-1, n) for n < 4095 only.
				got := res.Results[k][0]
				if errno := res.Results[k][1]; errno != 0 {
					got = -errno
				}
				if got != want {
					t.Errorf("program %d input %x: kernel returned %#x, we return %#x\n%s", i, a, got, ours, Disassemble(wrapped))
				}
			}
		}()
	}
	wg.Wait()
}

func TestSeccompValidatorOpcodesMatchKernel(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("seccomp differential tests assume x86-64")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.WaitDelay = time.Second
	cmd.Env = append(os.Environ(), childOpcodesEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	var accepted map[uint16]bool
	if err := json.Unmarshal(out, &accepted); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	if len(accepted) < 30 {
		t.Fatalf("kernel accepted only %d opcodes: %v", len(accepted), accepted)
	}
	for _, op := range probedOpcodes() {
		_, err := Validate(opcodeProbe(op), SeccompFilter)
		if (err == nil) != accepted[op] {
			t.Errorf("opcode %#04x (%s): we say %v, kernel accepts: %v", op, mnemonic(Stmt(op, 4)), err, accepted[op])
		}
	}
}

// socketPair returns a unix datagram socket pair, closed at cleanup.
func socketPair(t *testing.T) (send, recv int) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func attach(fd int, insns []Instruction) error {
	if len(insns) == 0 {
		return unix.EINVAL
	}
	filter := make([]unix.SockFilter, len(insns))
	for i, ins := range insns {
		filter[i] = unix.SockFilter{Code: ins.OpCode, Jt: ins.JumpIfTrue, Jf: ins.JumpIfFalse, K: ins.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]})
}

func TestSocketFilterValidatorMatchesKernel(t *testing.T) {
	_, fd := socketPair(t)
	check := func(insns []Instruction) {
		t.Helper()
		_, ours := Validate(insns, SocketFilter)
		theirs := attach(fd, insns)
		if (ours == nil) != (theirs == nil) {
			t.Fatalf("we say %v, kernel says %v\n%s", ours, theirs, Disassemble(insns))
		}
	}
	// Every 16-bit opcode, alone before a return, with two constants.
	for op := range 0x10000 {
		for _, k := range []uint32{0, 1} {
			check([]Instruction{Stmt(uint16(op), k), retA()})
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		insns := randomProgram(r, SocketFilter, 1+r.IntN(30), 48)
		if r.IntN(2) == 0 {
			insns = mutate(r, insns)
		}
		check(insns)
	}
}

func TestSocketFilterMatchesKernel(t *testing.T) {
	send, recv := socketPair(t)
	r := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, 256)
	run := func(insns []Instruction, pkts [][]byte) {
		t.Helper()
		p, err := Validate(insns, SocketFilter)
		if err != nil {
			return
		}
		if err := attach(recv, insns); err != nil {
			t.Fatalf("kernel rejects a program we accept: %v\n%s", err, Disassemble(insns))
		}
		for _, pkt := range pkts {
			if _, err := unix.Write(send, pkt); err != nil {
				t.Fatalf("write: %v", err)
			}
			got := -1 // dropped
			n, _, err := unix.Recvfrom(recv, buf, unix.MSG_DONTWAIT)
			switch {
			case err == nil:
				got = n
			case err != unix.EAGAIN:
				t.Fatalf("recvfrom: %v", err)
			}
			want := -1
			if ret := p.RunPacket(pkt); ret != 0 {
				want = int(min(uint32(len(pkt)), ret))
			}
			if got != want {
				t.Fatalf("packet % x: kernel kept %d bytes, we keep %d (-1 is dropped)\n%s", pkt, got, want, Disassemble(insns))
			}
		}
	}
	// Hand-written: return the first byte, or drop on an empty load.
	run([]Instruction{ldAbs(SizeByte, 0), retA()}, [][]byte{{3, 1, 1, 1, 1}, {200, 1}, {0, 9}})
	run([]Instruction{Stmt(ClassLoadX|SizeByte|ModeMSH, 0), ldInd(SizeHalf, 0), retA()},
		[][]byte{{0x41, 0, 0, 0, 0, 9}, {0x41, 0, 0, 0, 0, 0, 9}, {0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9}})
	run([]Instruction{ldImm(7), ldxImm(0), aluX(Div), retK(100)}, [][]byte{{1, 2, 3}})
	for range 400 {
		insns := randomProgram(r, SocketFilter, 2+r.IntN(40), 48)
		var pkts [][]byte
		for range 8 {
			pkt := make([]byte, 1+r.IntN(48))
			for i := range pkt {
				pkt[i] = byte(interesting(r))
			}
			pkts = append(pkts, pkt)
		}
		run(insns, pkts)
	}
}
