package seccomp

import "fmt"

type matchOp uint8

const (
	matchAny matchOp = iota
	matchEqual
	matchNotEqual
	matchMaskedEqual
	matchGreater
	matchGreaterEqual
	matchLess
	matchLessEqual
)

// ArgMatcher tests one 64-bit syscall argument. The zero value matches any
// value. Comparisons are unsigned unless built with a Signed constructor.
type ArgMatcher struct {
	op     matchOp
	signed bool
	value  uint64
	mask   uint64
}

// AnyValue matches every value.
func AnyValue() ArgMatcher { return ArgMatcher{} }

// EqualTo matches v.
func EqualTo(v uint64) ArgMatcher { return ArgMatcher{op: matchEqual, value: v} }

// NotEqualTo matches every value but v.
func NotEqualTo(v uint64) ArgMatcher { return ArgMatcher{op: matchNotEqual, value: v} }

// MaskedEqual matches arg with arg&mask == v.
func MaskedEqual(mask, v uint64) ArgMatcher {
	return ArgMatcher{op: matchMaskedEqual, value: v, mask: mask}
}

// GreaterThan matches arg > v (unsigned).
func GreaterThan(v uint64) ArgMatcher { return ArgMatcher{op: matchGreater, value: v} }

// GreaterThanOrEqual matches arg >= v (unsigned).
func GreaterThanOrEqual(v uint64) ArgMatcher { return ArgMatcher{op: matchGreaterEqual, value: v} }

// LessThan matches arg < v (unsigned).
func LessThan(v uint64) ArgMatcher { return ArgMatcher{op: matchLess, value: v} }

// LessThanOrEqual matches arg <= v (unsigned).
func LessThanOrEqual(v uint64) ArgMatcher { return ArgMatcher{op: matchLessEqual, value: v} }

// SignedGreaterThan matches int64(arg) > v.
func SignedGreaterThan(v int64) ArgMatcher {
	return ArgMatcher{op: matchGreater, signed: true, value: uint64(v)}
}

// SignedGreaterThanOrEqual matches int64(arg) >= v.
func SignedGreaterThanOrEqual(v int64) ArgMatcher {
	return ArgMatcher{op: matchGreaterEqual, signed: true, value: uint64(v)}
}

// SignedLessThan matches int64(arg) < v.
func SignedLessThan(v int64) ArgMatcher {
	return ArgMatcher{op: matchLess, signed: true, value: uint64(v)}
}

// SignedLessThanOrEqual matches int64(arg) <= v.
func SignedLessThanOrEqual(v int64) ArgMatcher {
	return ArgMatcher{op: matchLessEqual, signed: true, value: uint64(v)}
}

// IsAny reports whether m matches every value.
func (m ArgMatcher) IsAny() bool { return m.op == matchAny }

// Matches reports whether arg satisfies m. It is the reference the compiled
// program is tested against.
func (m ArgMatcher) Matches(arg uint64) bool {
	less := func(a, b uint64) bool {
		if m.signed {
			return int64(a) < int64(b)
		}
		return a < b
	}
	switch m.op {
	case matchAny:
		return true
	case matchEqual:
		return arg == m.value
	case matchNotEqual:
		return arg != m.value
	case matchMaskedEqual:
		return arg&m.mask == m.value
	case matchGreater:
		return less(m.value, arg)
	case matchGreaterEqual:
		return !less(arg, m.value)
	case matchLess:
		return less(arg, m.value)
	case matchLessEqual:
		return !less(m.value, arg)
	}
	return false
}

func (m ArgMatcher) String() string {
	s := ""
	if m.signed {
		s = "signed "
	}
	switch m.op {
	case matchAny:
		return "*"
	case matchEqual:
		return fmt.Sprintf("== %#x", m.value)
	case matchNotEqual:
		return fmt.Sprintf("!= %#x", m.value)
	case matchMaskedEqual:
		return fmt.Sprintf("&%#x == %#x", m.mask, m.value)
	case matchGreater:
		return fmt.Sprintf("%s> %#x", s, m.value)
	case matchGreaterEqual:
		return fmt.Sprintf("%s>= %#x", s, m.value)
	case matchLess:
		return fmt.Sprintf("%s< %#x", s, m.value)
	case matchLessEqual:
		return fmt.Sprintf("%s<= %#x", s, m.value)
	}
	return "?"
}
