package vfs_test

import (
	"context"
	"testing"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

func TestMoveOffset(t *testing.T) {
	for _, c := range []struct {
		name                    string
		cur, size, offset, want int64
		whence                  int32
		err                     error
	}{
		{"set", 5, 10, 3, 3, unix.SEEK_SET, nil},
		{"cur", 5, 10, 3, 8, unix.SEEK_CUR, nil},
		{"cur back", 5, 10, -5, 0, unix.SEEK_CUR, nil},
		{"end", 5, 10, -2, 8, unix.SEEK_END, nil},
		{"past end", 5, 10, 7, 17, unix.SEEK_END, nil},
		{"negative", 5, 10, -1, 0, unix.SEEK_SET, unix.EINVAL},
		{"before start", 5, 10, -6, 0, unix.SEEK_CUR, unix.EINVAL},
		{"data", 5, 10, 0, 0, unix.SEEK_DATA, unix.EINVAL},
		{"bad whence", 5, 10, 0, 0, 99, unix.EINVAL},
	} {
		off := c.cur
		got, err := vfs.MoveOffset(&off, c.size, c.offset, c.whence)
		if err != c.err || got != c.want {
			t.Errorf("%s: MoveOffset = %d, %v; want %d, %v", c.name, got, err, c.want, c.err)
		}
		if wantOff := map[bool]int64{true: c.want, false: c.cur}[err == nil]; off != wantOff {
			t.Errorf("%s: offset now %d, want %d", c.name, off, wantOff)
		}
	}
}

func TestMoveDirOffset(t *testing.T) {
	off := int64(4)
	if got, err := vfs.MoveDirOffset(&off, 2, unix.SEEK_CUR); err != nil || got != 6 || off != 6 {
		t.Errorf("SEEK_CUR: %d, %v, offset %d; want 6", got, err, off)
	}
	if _, err := vfs.MoveDirOffset(&off, 0, unix.SEEK_END); err != unix.EINVAL || off != 6 {
		t.Errorf("SEEK_END: %v, offset %d; want EINVAL, offset 6", err, off)
	}
	if got, err := vfs.MoveDirOffset(&off, 0, unix.SEEK_SET); err != nil || got != 0 || off != 0 {
		t.Errorf("SEEK_SET 0: %d, %v, offset %d; want 0", got, err, off)
	}
}

func TestReadBytesAt(t *testing.T) {
	ctx := context.Background()
	data := []byte("hello")
	read := func(bufLen int, off int64) (string, int64, error) {
		mem := &usermem.BytesIO{Bytes: make([]byte, bufLen)}
		dst, err := usermem.BytesSequence(mem, 0, int64(bufLen), usermem.IOOpts{})
		if err != nil {
			t.Fatal(err)
		}
		n, err := vfs.ReadBytesAt(ctx, dst, data, off)
		return string(mem.Bytes[:max(n, 0)]), n, err
	}
	for _, c := range []struct {
		bufLen int
		off    int64
		want   string
		err    error
	}{
		{8, 0, "hello", nil},
		{3, 0, "hel", nil},
		{8, 3, "lo", nil},
		{8, 5, "", nil},
		{8, 99, "", nil},
		{8, -1, "", unix.EINVAL},
	} {
		got, n, err := read(c.bufLen, c.off)
		if got != c.want || n != int64(len(c.want)) || err != c.err {
			t.Errorf("ReadBytesAt(buf %d, off %d) = %q (%d), %v; want %q, %v", c.bufLen, c.off, got, n, err, c.want, c.err)
		}
	}
}

// noDirents is a directory with nothing in it.
type noDirents struct{}

func (noDirents) IterDirents(_ context.Context, offset int64, _ uint64, _ func(vfs.Dirent) bool) (int64, error) {
	return offset, nil
}

func TestDirectoryFileSeekAndRead(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		f      *vfs.DirectoryFile
		endErr error
	}{
		{"tmpfs-like", vfs.NewDirectoryFile(noDirents{}), unix.EINVAL},
		{"sizeless", vfs.NewSizelessDirectoryFile(noDirents{}), nil},
	} {
		if got, err := c.f.Seek(ctx, nil, 3, unix.SEEK_SET); err != nil || got != 3 {
			t.Errorf("%s: SEEK_SET 3 = %d, %v", c.name, got, err)
		}
		if got, err := c.f.Seek(ctx, nil, 2, unix.SEEK_CUR); err != nil || got != 5 {
			t.Errorf("%s: SEEK_CUR 2 = %d, %v; want 5", c.name, got, err)
		}
		if got, err := c.f.Seek(ctx, nil, 1, unix.SEEK_END); err != c.endErr || (err == nil && got != 1) {
			t.Errorf("%s: SEEK_END 1 = %d, %v; want error %v", c.name, got, err, c.endErr)
		}
		if _, err := c.f.Read(ctx, nil, usermem.IOSequence{}, vfs.ReadOptions{}); err != unix.EISDIR {
			t.Errorf("%s: read = %v, want EISDIR", c.name, err)
		}
	}
}

func TestBytesFile(t *testing.T) {
	ctx := context.Background()
	f := vfs.NewBytesFile([]byte("abcdef"))
	buf := make([]byte, 4)
	dst := func() usermem.IOSequence {
		s, err := usermem.BytesSequence(&usermem.BytesIO{Bytes: buf}, 0, int64(len(buf)), usermem.IOOpts{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if n, err := f.Read(ctx, nil, dst(), vfs.ReadOptions{}); n != 4 || err != nil || string(buf) != "abcd" {
		t.Fatalf("first read = %d %q, %v", n, buf[:max(n, 0)], err)
	}
	if n, err := f.Read(ctx, nil, dst(), vfs.ReadOptions{}); n != 2 || err != nil || string(buf[:2]) != "ef" {
		t.Fatalf("second read = %d %q, %v; want the rest", n, buf[:max(n, 0)], err)
	}
	if n, err := f.Read(ctx, nil, dst(), vfs.ReadOptions{}); n != 0 || err != nil {
		t.Fatalf("read at end = %d, %v; want 0 (EOF)", n, err)
	}
	// pread neither needs nor moves the offset.
	if n, err := f.PRead(ctx, nil, dst(), 1, vfs.ReadOptions{}); n != 4 || err != nil || string(buf) != "bcde" {
		t.Fatalf("pread at 1 = %d %q, %v", n, buf[:max(n, 0)], err)
	}
	if off, err := f.Seek(ctx, nil, -3, unix.SEEK_END); off != 3 || err != nil {
		t.Fatalf("SEEK_END -3 = %d, %v; want 3", off, err)
	}
	if n, err := f.Read(ctx, nil, dst(), vfs.ReadOptions{}); n != 3 || err != nil || string(buf[:3]) != "def" {
		t.Fatalf("read after seek = %d %q, %v", n, buf[:max(n, 0)], err)
	}
}

func TestIterDots(t *testing.T) {
	var got []vfs.Dirent
	take := func(n int) func(vfs.Dirent) bool {
		return func(d vfs.Dirent) bool {
			if len(got) == n {
				return false
			}
			got = append(got, d)
			return true
		}
	}
	// Both dots, then the entries start at 5.
	off := int64(0)
	if !vfs.IterDots(&off, 7, 3, 5, take(2)) || off != 5 {
		t.Fatalf("IterDots from 0 = offset %d", off)
	}
	if len(got) != 2 || got[0] != (vfs.Dirent{Name: ".", Ino: 7, Type: unix.DT_DIR, NextOff: 1}) ||
		got[1] != (vfs.Dirent{Name: "..", Ino: 3, Type: unix.DT_DIR, NextOff: 5}) {
		t.Fatalf("entries %+v", got)
	}
	// A caller that takes only "." resumes at "..".
	got, off = nil, 0
	if vfs.IterDots(&off, 7, 3, 5, take(1)) || off != 1 || len(got) != 1 {
		t.Fatalf("stopped after one: offset %d, %d entries", off, len(got))
	}
	got = nil
	if !vfs.IterDots(&off, 7, 3, 5, take(1)) || off != 5 || len(got) != 1 || got[0].Name != ".." {
		t.Fatalf("resumed at 1: offset %d, entries %+v", off, got)
	}
	// Past the dots nothing is listed.
	got, off = nil, 6
	if !vfs.IterDots(&off, 7, 3, 5, take(2)) || off != 6 || len(got) != 0 {
		t.Fatalf("from 6: offset %d, entries %+v", off, got)
	}
}
