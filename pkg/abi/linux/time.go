package linux

// Clock ids for clock_gettime(2), clock_nanosleep(2) and timer_create(2).
// Negative ids name per-process and per-thread CPU clocks and fds (see
// clock_getres(2)); they are decoded where used.
const (
	CLOCK_REALTIME           = 0
	CLOCK_MONOTONIC          = 1
	CLOCK_PROCESS_CPUTIME_ID = 2
	CLOCK_THREAD_CPUTIME_ID  = 3
	CLOCK_MONOTONIC_RAW      = 4
	CLOCK_REALTIME_COARSE    = 5
	CLOCK_MONOTONIC_COARSE   = 6
	CLOCK_BOOTTIME           = 7
	CLOCK_REALTIME_ALARM     = 8
	CLOCK_BOOTTIME_ALARM     = 9
	CLOCK_TAI                = 11
	MAX_CLOCKS               = 16
)

// Timer flags and interval-timer ids.
const (
	// TIMER_ABSTIME makes clock_nanosleep and timer_settime take an
	// absolute time.
	TIMER_ABSTIME = 0x1

	// timerfd_settime(2) flags.
	TFD_TIMER_ABSTIME       = 0x1
	TFD_TIMER_CANCEL_ON_SET = 0x2

	// setitimer(2) which values.
	ITIMER_REAL    = 0
	ITIMER_VIRTUAL = 1
	ITIMER_PROF    = 2
)

// Time unit conversions used with Timespec and Timeval.
const (
	NsecPerSec  = 1_000_000_000
	UsecPerSec  = 1_000_000
	NsecPerUsec = 1_000

	// CLK_TCK is the clock-tick rate of times(2) and /proc, AT_CLKTCK.
	CLK_TCK = 100
)
