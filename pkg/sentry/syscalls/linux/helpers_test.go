package linux

import "time"

func timeNowUnix() int64 { return time.Now().Unix() }

// neg is -v as a register value.
func neg(v uintptr) uintptr { return -v }
