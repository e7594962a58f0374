package buffer

import (
	"bytes"
	"testing"
)

func TestPrependable(t *testing.T) {
	p := NewPrependable(10)
	copy(p.Prepend(4), "data")
	copy(p.Prepend(3), "hdr")
	if got := string(p.View()); got != "hdrdata" {
		t.Fatalf("View = %q, want hdrdata", got)
	}
	if p.UsedLength() != 7 || p.AvailableLength() != 3 {
		t.Fatalf("used %d avail %d", p.UsedLength(), p.AvailableLength())
	}
	if p.Prepend(4) != nil {
		t.Fatal("Prepend beyond reserve should return nil")
	}
}

func TestViewTrim(t *testing.T) {
	v := View("abcdef")
	v.TrimFront(2)
	v.CapLength(3)
	if string(v) != "cde" {
		t.Fatalf("got %q", v)
	}
	v.TrimFront(10)
	if len(v) != 0 {
		t.Fatalf("got %q", v)
	}
}

func TestVectorisedView(t *testing.T) {
	vv := NewVectorisedView(View("ab"), nil, View("cde"), View("f"))
	if vv.Size() != 6 {
		t.Fatalf("size %d", vv.Size())
	}
	vv.TrimFront(3)
	if !bytes.Equal(vv.ToView(), []byte("def")) || vv.Size() != 3 {
		t.Fatalf("after trim: %q size %d", vv.ToView(), vv.Size())
	}
	one := NewVectorisedView(View("xyz"))
	a := one.ToView()
	a[0] = 'X'
	if one.Views()[0][0] != 'X' {
		t.Fatal("single-view ToView should not copy")
	}
}
