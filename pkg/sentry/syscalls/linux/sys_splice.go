package linux

import (
	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/fsimpl/pipe"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// splice(2) flags.
const (
	spliceFMove     = 1
	spliceFNonblock = 2
	spliceFMore     = 4
	spliceFGift     = 8
	spliceFlags     = spliceFMove | spliceFNonblock | spliceFMore | spliceFGift
)

// spliceChunk bounds the bytes one pipe↔file step moves through memory.
const spliceChunk = 64 << 10

// waitedFile is a file a splice waits on and the events it waits for.
type waitedFile struct {
	f    *vfs.FileDescription
	mask waiter.EventMask
}

// retryUntilReady runs op until it returns something other than EAGAIN,
// blocking the task between tries on the readiness of files, unless
// nonblock.
func retryUntilReady(t *kernel.Task, nonblock bool, files []waitedFile, op func() (int64, error)) (int64, error) {
	n, err := op()
	if err != unix.EAGAIN || nonblock {
		return n, err
	}
	ch := make(waiter.ChannelListener, 1)
	entries := make([]waiter.Entry, len(files))
	for i, w := range files {
		entries[i].Init(ch, w.mask|waiter.EventHUp|waiter.EventErr)
		if err := w.f.EventRegister(&entries[i]); err != nil {
			for j := range i {
				files[j].f.EventUnregister(&entries[j])
			}
			return 0, unix.EAGAIN
		}
	}
	defer func() {
		for i, w := range files {
			w.f.EventUnregister(&entries[i])
		}
	}()
	for {
		n, err = op()
		if err != unix.EAGAIN {
			return n, err
		}
		if berr := t.Block(ch); berr != nil {
			return 0, berr
		}
	}
}

// spliceOffset reads the loff_t at addr (0: none).
func spliceOffset(t *kernel.Task, addr hostarch.Addr) (*int64, error) {
	if addr == 0 {
		return nil, nil
	}
	var b [8]byte
	if _, err := t.CopyIn(addr, b[:]); err != nil {
		return nil, unix.EFAULT
	}
	off := int64(le64(b[:]))
	if off < 0 {
		return nil, unix.EINVAL
	}
	return &off, nil
}

func putSpliceOffset(t *kernel.Task, addr hostarch.Addr, off *int64) error {
	if off == nil {
		return nil
	}
	var b [8]byte
	put64(b[:], uint64(*off))
	if _, err := t.CopyOut(addr, b[:]); err != nil {
		return unix.EFAULT
	}
	return nil
}

func bytesSeq(b []byte) usermem.IOSequence {
	s, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: b}, 0, int64(len(b)), usermem.IOOpts{})
	return s
}

// Splice implements splice(2): one end must be a pipe.
func Splice(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	inFD, inOffAddr := args[0].Int(), args[1].Pointer()
	outFD, outOffAddr := args[2].Int(), args[3].Pointer()
	count, flags := args[4].Uint64(), args[5].Uint()
	if flags&^spliceFlags != 0 {
		return 0, unix.EINVAL
	}
	in, err := getFile(t, inFD)
	if err != nil {
		return 0, err
	}
	defer in.DecRef(t)
	out, err := getFile(t, outFD)
	if err != nil {
		return 0, err
	}
	defer out.DecRef(t)
	if !in.IsReadable() || !out.IsWritable() {
		return 0, unix.EBADF
	}
	inPipe, outPipe := pipe.FromFile(in), pipe.FromFile(out)
	if inPipe == nil && outPipe == nil {
		return 0, unix.EINVAL
	}
	if (inPipe != nil && inOffAddr != 0) || (outPipe != nil && outOffAddr != 0) {
		return 0, unix.ESPIPE
	}
	if out.StatusFlags()&linux.O_APPEND != 0 {
		return 0, unix.EINVAL
	}
	inOff, err := spliceOffset(t, inOffAddr)
	if err != nil {
		return 0, err
	}
	outOff, err := spliceOffset(t, outOffAddr)
	if err != nil {
		return 0, err
	}
	n := int64(min(count, maxRWCount))
	if n == 0 {
		return 0, nil
	}
	nonblock := flags&spliceFNonblock != 0
	var done int64
	switch {
	case inPipe != nil && outPipe != nil:
		nonblock = nonblock || !isBlocking(in) || !isBlocking(out)
		done, err = retryUntilReady(t, nonblock,
			[]waitedFile{{in, waiter.ReadableEvents}, {out, waiter.WritableEvents}},
			func() (int64, error) { return pipe.Splice(inPipe, outPipe, n) })
	case inPipe != nil:
		nonblock = nonblock || !isBlocking(in)
		buf := make([]byte, min(n, spliceChunk))
		done, err = retryUntilReady(t, nonblock,
			[]waitedFile{{in, waiter.ReadableEvents}, {out, waiter.WritableEvents}},
			func() (int64, error) { return pipeToFile(t, inPipe, out, outOff, buf) })
	default:
		nonblock = nonblock || !isBlocking(out)
		buf := make([]byte, min(n, spliceChunk))
		done, err = retryUntilReady(t, nonblock,
			[]waitedFile{{in, waiter.ReadableEvents}, {out, waiter.WritableEvents}},
			func() (int64, error) { return fileToPipe(t, in, inOff, outPipe, buf) })
	}
	raiseSIGPIPE(t, err)
	if err := putSpliceOffset(t, inOffAddr, inOff); err != nil {
		return 0, err
	}
	if err := putSpliceOffset(t, outOffAddr, outOff); err != nil {
		return 0, err
	}
	return uintptr(done), err
}

// pipeToFile moves what the pipe holds (up to len(buf)) to out, consuming
// only what out took.
func pipeToFile(t *kernel.Task, p *pipe.Pipe, out *vfs.FileDescription, off *int64, buf []byte) (int64, error) {
	n, err := p.Peek(t, bytesSeq(buf))
	if n == 0 {
		return 0, err // EOF, or EAGAIN to wait
	}
	woff := int64(-1)
	if off != nil {
		woff = *off
	}
	src, lerr := limitFileWrite(t, out, bytesSeq(buf[:n]), woff)
	if lerr != nil {
		return 0, lerr
	}
	w, werr := writeOnce(t, out, src, woff)
	if w > 0 {
		p.Consume(w)
		if off != nil {
			*off += w
		}
		return w, nil
	}
	return 0, werr
}

// fileToPipe reads from in as much as the pipe has room for (up to
// len(buf)) and appends it to the pipe.
func fileToPipe(t *kernel.Task, in *vfs.FileDescription, off *int64, p *pipe.Pipe, buf []byte) (int64, error) {
	room := p.Room()
	if room == 0 {
		// EPIPE takes precedence over waiting for room.
		if _, err := p.WriteBytes(nil); err != nil {
			return 0, err
		}
		return 0, unix.EAGAIN
	}
	chunk := buf[:min(int64(len(buf)), room)]
	roff := int64(-1)
	if off != nil {
		roff = *off
	}
	n, err := readOnce(t, in, bytesSeq(chunk), roff)
	if n == 0 {
		return 0, err
	}
	w, werr := p.WriteBytes(chunk[:n])
	if off != nil {
		*off += w
	} else if w < n {
		// Another writer took the room meanwhile: give the unread part
		// back to the file offset where the file can seek.
		_, _ = in.Seek(t, w-n, linux.SEEK_CUR)
	}
	if w == 0 {
		return 0, werr
	}
	return w, nil
}

// Tee implements tee(2): both ends are pipes, and the input keeps its
// data.
func Tee(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	inFD, outFD := args[0].Int(), args[1].Int()
	count, flags := args[2].Uint64(), args[3].Uint()
	if flags&^spliceFlags != 0 {
		return 0, unix.EINVAL
	}
	in, err := getFile(t, inFD)
	if err != nil {
		return 0, err
	}
	defer in.DecRef(t)
	out, err := getFile(t, outFD)
	if err != nil {
		return 0, err
	}
	defer out.DecRef(t)
	if !in.IsReadable() || !out.IsWritable() {
		return 0, unix.EBADF
	}
	inPipe, outPipe := pipe.FromFile(in), pipe.FromFile(out)
	if inPipe == nil || outPipe == nil || inPipe == outPipe {
		return 0, unix.EINVAL
	}
	n := int64(min(count, maxRWCount))
	if n == 0 {
		return 0, nil
	}
	nonblock := flags&spliceFNonblock != 0 || !isBlocking(in) || !isBlocking(out)
	done, err := retryUntilReady(t, nonblock,
		[]waitedFile{{in, waiter.ReadableEvents}, {out, waiter.WritableEvents}},
		func() (int64, error) { return pipe.Tee(inPipe, outPipe, n) })
	raiseSIGPIPE(t, err)
	return uintptr(done), err
}

// Vmsplice implements vmsplice(2) as a copy: user memory into a pipe's
// write end, or a pipe's read end into user memory.
func Vmsplice(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	fd, iovAddr, nrSegs, flags := args[0].Int(), args[1].Pointer(), args[2].Uint64(), args[3].Uint()
	if flags&^spliceFlags != 0 {
		return 0, unix.EINVAL
	}
	if nrSegs > linux.UIO_MAXIOV {
		return 0, unix.EINVAL
	}
	f, err := getFile(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	if pipe.FromFile(f) == nil {
		return 0, unix.EBADF
	}
	seq, err := iovecs(t, iovAddr, int32(nrSegs))
	if err != nil {
		return 0, err
	}
	nonblock := flags&spliceFNonblock != 0
	switch {
	case f.IsWritable():
		var n int64
		if nonblock {
			n, err = writeOnce(t, f, seq, -1)
		} else {
			n, err = writeFile(t, f, seq, -1)
		}
		raiseSIGPIPE(t, err)
		if n > 0 {
			err = nil
		}
		return uintptr(n), err
	case f.IsReadable():
		var n int64
		if nonblock {
			n, err = readOnce(t, f, seq, -1)
		} else {
			n, err = readFile(t, f, seq, -1)
		}
		if n > 0 {
			err = nil
		}
		return uintptr(n), err
	default:
		return 0, unix.EBADF
	}
}
