package linux

import "time"

// Timespec is struct timespec (and struct __kernel_timespec) on amd64.
type Timespec struct {
	Sec  int64
	Nsec int64
}

// Timeval is struct timeval on amd64.
type Timeval struct {
	Sec  int64
	Usec int64
}

// Itimerspec is struct itimerspec, for timer_settime(2) and timerfd.
type Itimerspec struct {
	Interval Timespec
	Value    Timespec
}

// Itimerval is struct itimerval, for setitimer(2).
type Itimerval struct {
	Interval Timeval
	Value    Timeval
}

// Tms is struct tms, for times(2); values are in CLK_TCK ticks.
type Tms struct {
	UTime  int64
	STime  int64
	CUTime int64
	CSTime int64
}

// Struct sizes.
const (
	SizeOfTimespec   = 16
	SizeOfTimeval    = 16
	SizeOfItimerspec = 32
	SizeOfItimerval  = 32
	SizeOfTms        = 32
)

// NsecToTimespec converts nanoseconds to a Timespec. Negative durations keep
// Nsec in [0, 1e9) as the kernel requires, borrowing from Sec.
func NsecToTimespec(ns int64) Timespec {
	ts := Timespec{Sec: ns / NsecPerSec, Nsec: ns % NsecPerSec}
	if ts.Nsec < 0 {
		ts.Sec--
		ts.Nsec += NsecPerSec
	}
	return ts
}

// DurationToTimespec converts a time.Duration to a Timespec.
func DurationToTimespec(d time.Duration) Timespec { return NsecToTimespec(int64(d)) }

// Valid reports whether Nsec is in [0, 1e9) and Sec is not negative, the
// check syscalls taking a timespec make before returning EINVAL.
func (ts Timespec) Valid() bool {
	return ts.Sec >= 0 && ts.Nsec >= 0 && ts.Nsec < NsecPerSec
}

// ToNsec returns ts in nanoseconds, saturating at the int64 limits instead
// of wrapping, so a huge application-supplied timeout stays huge.
func (ts Timespec) ToNsec() int64 {
	const maxSec = (1<<63 - 1) / NsecPerSec
	if ts.Sec > maxSec {
		return 1<<63 - 1
	}
	if ts.Sec < -maxSec {
		return -1 << 63
	}
	return ts.Sec*NsecPerSec + ts.Nsec
}

// ToDuration returns ts as a time.Duration, saturating like ToNsec.
func (ts Timespec) ToDuration() time.Duration { return time.Duration(ts.ToNsec()) }

// NsecToTimeval converts nanoseconds to a Timeval, truncating to
// microseconds.
func NsecToTimeval(ns int64) Timeval {
	ts := NsecToTimespec(ns)
	return Timeval{Sec: ts.Sec, Usec: ts.Nsec / NsecPerUsec}
}

// Valid reports whether Usec is in [0, 1e6) and Sec is not negative.
func (tv Timeval) Valid() bool {
	return tv.Sec >= 0 && tv.Usec >= 0 && tv.Usec < UsecPerSec
}

// ToNsec returns tv in nanoseconds, saturating at the int64 limits.
func (tv Timeval) ToNsec() int64 {
	return Timespec{Sec: tv.Sec, Nsec: tv.Usec * NsecPerUsec}.ToNsec()
}

// SizeBytes implements Marshaler.
func (*Timespec) SizeBytes() int { return SizeOfTimespec }

// MarshalBytes implements Marshaler.
func (ts *Timespec) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfTimespec-1]
	le.PutUint64(dst[0:], uint64(ts.Sec))
	le.PutUint64(dst[8:], uint64(ts.Nsec))
	return dst[SizeOfTimespec:]
}

// UnmarshalBytes implements Marshaler.
func (ts *Timespec) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfTimespec-1]
	ts.Sec = int64(le.Uint64(src[0:]))
	ts.Nsec = int64(le.Uint64(src[8:]))
	return src[SizeOfTimespec:]
}

// SizeBytes implements Marshaler.
func (*Timeval) SizeBytes() int { return SizeOfTimeval }

// MarshalBytes implements Marshaler.
func (tv *Timeval) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfTimeval-1]
	le.PutUint64(dst[0:], uint64(tv.Sec))
	le.PutUint64(dst[8:], uint64(tv.Usec))
	return dst[SizeOfTimeval:]
}

// UnmarshalBytes implements Marshaler.
func (tv *Timeval) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfTimeval-1]
	tv.Sec = int64(le.Uint64(src[0:]))
	tv.Usec = int64(le.Uint64(src[8:]))
	return src[SizeOfTimeval:]
}

// SizeBytes implements Marshaler.
func (*Itimerspec) SizeBytes() int { return SizeOfItimerspec }

// MarshalBytes implements Marshaler.
func (it *Itimerspec) MarshalBytes(dst []byte) []byte {
	return it.Value.MarshalBytes(it.Interval.MarshalBytes(dst))
}

// UnmarshalBytes implements Marshaler.
func (it *Itimerspec) UnmarshalBytes(src []byte) []byte {
	return it.Value.UnmarshalBytes(it.Interval.UnmarshalBytes(src))
}

// SizeBytes implements Marshaler.
func (*Itimerval) SizeBytes() int { return SizeOfItimerval }

// MarshalBytes implements Marshaler.
func (it *Itimerval) MarshalBytes(dst []byte) []byte {
	return it.Value.MarshalBytes(it.Interval.MarshalBytes(dst))
}

// UnmarshalBytes implements Marshaler.
func (it *Itimerval) UnmarshalBytes(src []byte) []byte {
	return it.Value.UnmarshalBytes(it.Interval.UnmarshalBytes(src))
}

// SizeBytes implements Marshaler.
func (*Tms) SizeBytes() int { return SizeOfTms }

// MarshalBytes implements Marshaler.
func (t *Tms) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfTms-1]
	le.PutUint64(dst[0:], uint64(t.UTime))
	le.PutUint64(dst[8:], uint64(t.STime))
	le.PutUint64(dst[16:], uint64(t.CUTime))
	le.PutUint64(dst[24:], uint64(t.CSTime))
	return dst[SizeOfTms:]
}

// UnmarshalBytes implements Marshaler.
func (t *Tms) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfTms-1]
	t.UTime = int64(le.Uint64(src[0:]))
	t.STime = int64(le.Uint64(src[8:]))
	t.CUTime = int64(le.Uint64(src[16:]))
	t.CSTime = int64(le.Uint64(src[24:]))
	return src[SizeOfTms:]
}
