package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CgroupStats is what a sandbox's cgroup reports of its use and limits
// (`runsc events --stats`, as runc's). A limit of 0 means none.
type CgroupStats struct {
	MemoryUsage uint64
	MemoryLimit uint64
	// MemoryStat is memory.stat, as the kernel names its entries.
	MemoryStat map[string]uint64

	PidsCurrent uint64
	PidsLimit   uint64

	// CPU times in nanoseconds.
	CPUUsage, CPUUser, CPUSystem uint64
	// CFS bandwidth: periods elapsed, periods throttled, time throttled
	// (ns).
	CPUPeriods, CPUThrottledPeriods, CPUThrottledTime uint64
}

// unlimitedV1 is the smallest value a v1 limit file shows for "no limit"
// (the kernel prints PAGE_COUNTER_MAX pages, rounded to a page).
const unlimitedV1 = 1 << 62

// Stats reads the cgroup's usage and limits. Files the host lacks (a
// controller not there) leave their fields zero; a file that does not
// parse is an error.
func (c *Cgroup) Stats() (*CgroupStats, error) {
	s := &CgroupStats{}
	if c.v2() {
		return s, c.statsV2(s)
	}
	return s, c.statsV1(s)
}

func (c *Cgroup) statsV2(s *CgroupStats) error {
	dir := c.Dirs[""]
	var err error
	set := func(dst *uint64, file string, max bool) {
		if err == nil {
			err = readSingle(dst, dir, file, max, 0)
		}
	}
	set(&s.MemoryUsage, "memory.current", false)
	set(&s.MemoryLimit, "memory.max", true)
	set(&s.PidsCurrent, "pids.current", false)
	set(&s.PidsLimit, "pids.max", true)
	if err != nil {
		return err
	}
	if s.MemoryStat, err = readFlatKeyed(dir, "memory.stat"); err != nil {
		return err
	}
	cpu, err := readFlatKeyed(dir, "cpu.stat")
	if err != nil {
		return err
	}
	// cpu.stat counts microseconds.
	s.CPUUsage, s.CPUUser, s.CPUSystem = cpu["usage_usec"]*1000, cpu["user_usec"]*1000, cpu["system_usec"]*1000
	s.CPUPeriods, s.CPUThrottledPeriods, s.CPUThrottledTime = cpu["nr_periods"], cpu["nr_throttled"], cpu["throttled_usec"]*1000
	return nil
}

func (c *Cgroup) statsV1(s *CgroupStats) error {
	var err error
	set := func(dst *uint64, ctrl, file string, max bool) {
		if dir, ok := c.Dirs[ctrl]; ok && err == nil {
			err = readSingle(dst, dir, file, max, unlimitedV1)
		}
	}
	set(&s.MemoryUsage, "memory", "memory.usage_in_bytes", false)
	set(&s.MemoryLimit, "memory", "memory.limit_in_bytes", false)
	set(&s.PidsCurrent, "pids", "pids.current", false)
	set(&s.PidsLimit, "pids", "pids.max", true)
	set(&s.CPUUsage, "cpuacct", "cpuacct.usage", false)
	if err != nil {
		return err
	}
	if dir, ok := c.Dirs["memory"]; ok {
		if s.MemoryStat, err = readFlatKeyed(dir, "memory.stat"); err != nil {
			return err
		}
	}
	if dir, ok := c.Dirs["cpuacct"]; ok {
		st, err := readFlatKeyed(dir, "cpuacct.stat")
		if err != nil {
			return err
		}
		// cpuacct.stat counts USER_HZ (100 a second) ticks.
		s.CPUUser, s.CPUSystem = st["user"]*10_000_000, st["system"]*10_000_000
	}
	if dir, ok := c.Dirs["cpu"]; ok {
		st, err := readFlatKeyed(dir, "cpu.stat")
		if err != nil {
			return err
		}
		s.CPUPeriods, s.CPUThrottledPeriods, s.CPUThrottledTime = st["nr_periods"], st["nr_throttled"], st["throttled_time"]
	}
	return nil
}

// readSingle reads a file holding one number into dst; "max" (with
// allowMax) and values at or above unlimited (if not 0) read as 0, no
// limit. A missing file leaves dst alone.
func readSingle(dst *uint64, dir, file string, allowMax bool, unlimited uint64) error {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	v, err := parseSingle(data, allowMax)
	if err != nil {
		return fmt.Errorf("cgroup file %s: %w", filepath.Join(dir, file), err)
	}
	if unlimited != 0 && v >= unlimited {
		v = 0
	}
	*dst = v
	return nil
}

// parseSingle parses a cgroup file of one unsigned number (or "max",
// returned as 0, when allowMax).
func parseSingle(data []byte, allowMax bool) (uint64, error) {
	t := strings.TrimSpace(string(data))
	if allowMax && t == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", t)
	}
	return v, nil
}

// readFlatKeyed reads a "key value" per line file (memory.stat,
// cpu.stat); nil if it does not exist.
func readFlatKeyed(dir, file string) (map[string]uint64, error) {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := parseFlatKeyed(data)
	if err != nil {
		return nil, fmt.Errorf("cgroup file %s: %w", filepath.Join(dir, file), err)
	}
	return m, nil
}

// parseFlatKeyed parses the cgroup "flat keyed" format: lines of a key, a
// space and an unsigned number.
func parseFlatKeyed(data []byte) (map[string]uint64, error) {
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, " ")
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d %q is not \"key value\"", n, line)
		}
		u, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %q is not a number", n, line, v)
		}
		out[k] = u
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
