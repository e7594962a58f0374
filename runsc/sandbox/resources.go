package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"carapace.dev/carapace/pkg/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// HasResources reports whether r sets a limit Apply enforces.
func HasResources(r *specs.LinuxResources) bool {
	if r == nil {
		return false
	}
	if m := r.Memory; m != nil && (m.Limit != nil || m.Reservation != nil || m.Swap != nil || m.Swappiness != nil) {
		return true
	}
	if p := r.Pids; p != nil && p.Limit != nil {
		return true
	}
	if c := r.CPU; c != nil && (c.Shares != nil || c.Quota != nil || c.Period != nil || c.Cpus != "" || c.Mems != "") {
		return true
	}
	if b := r.BlockIO; b != nil && b.Weight != nil {
		return true
	}
	return len(r.Unified) > 0
}

// ErrNoController is wrapped by Apply's error when a limit needs a
// controller the cgroup does not have.
var ErrNoController = errors.New("cgroup controller not available")

// Apply writes the memory, pids and cpu limits of r to the cgroup (v1 or
// v2 files). Unset fields are left as they are, so `runsc update` can
// change one limit. linux.resources.devices concern host device nodes,
// which a sandbox never opens, and are not applied.
func (c *Cgroup) Apply(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	warnUnsupported(r, c.v2())
	if c.v2() {
		return c.applyV2(r)
	}
	if len(r.Unified) > 0 {
		return errors.New("linux.resources.unified needs a cgroup v2 host")
	}
	return c.applyV1(r)
}

func (c *Cgroup) dir(ctrl string) (string, error) {
	d, ok := c.Dirs[ctrl]
	if !ok {
		return "", fmt.Errorf("the host has no %s cgroup controller: %w", ctrl, ErrNoController)
	}
	return d, nil
}

func fmtLimit(v int64, unlimited string) string {
	if v < 0 {
		return unlimited
	}
	return strconv.FormatInt(v, 10)
}

func (c *Cgroup) applyV1(r *specs.LinuxResources) error {
	if m := r.Memory; m != nil {
		dir, err := c.dir("memory")
		if err != nil {
			return err
		}
		if err := setMemoryV1(dir, m.Limit, m.Swap); err != nil {
			return err
		}
		if m.Reservation != nil {
			if err := writeCgroupFile(dir, "memory.soft_limit_in_bytes", fmtLimit(*m.Reservation, "-1")); err != nil {
				return err
			}
		}
		if m.Swappiness != nil && *m.Swappiness <= 100 {
			if err := writeCgroupFile(dir, "memory.swappiness", strconv.FormatUint(*m.Swappiness, 10)); err != nil {
				return err
			}
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil {
		dir, err := c.dir("pids")
		if err != nil {
			return err
		}
		if err := writeCgroupFile(dir, "pids.max", pidsMax(*p.Limit)); err != nil {
			return err
		}
	}
	if cpu := r.CPU; cpu != nil {
		if cpu.Shares != nil || cpu.Period != nil || cpu.Quota != nil {
			dir, err := c.dir("cpu")
			if err != nil {
				return err
			}
			if cpu.Shares != nil && *cpu.Shares != 0 {
				if err := writeCgroupFile(dir, "cpu.shares", strconv.FormatUint(*cpu.Shares, 10)); err != nil {
					return err
				}
			}
			// The period first: a quota is checked against it.
			if cpu.Period != nil && *cpu.Period != 0 {
				if err := writeCgroupFile(dir, "cpu.cfs_period_us", strconv.FormatUint(*cpu.Period, 10)); err != nil {
					return err
				}
			}
			if cpu.Quota != nil && *cpu.Quota != 0 {
				if err := writeCgroupFile(dir, "cpu.cfs_quota_us", fmtLimit(*cpu.Quota, "-1")); err != nil {
					return err
				}
			}
		}
		if err := c.applyCpuset(cpu); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cgroup) applyCpuset(cpu *specs.LinuxCPU) error {
	if cpu.Cpus == "" && cpu.Mems == "" {
		return nil
	}
	dir, err := c.dir(map[bool]string{true: "", false: "cpuset"}[c.v2()])
	if err != nil {
		return err
	}
	if cpu.Cpus != "" {
		if err := writeCgroupFile(dir, "cpuset.cpus", cpu.Cpus); err != nil {
			return err
		}
	}
	if cpu.Mems != "" {
		if err := writeCgroupFile(dir, "cpuset.mems", cpu.Mems); err != nil {
			return err
		}
	}
	return nil
}

func pidsMax(limit int64) string {
	if limit <= 0 {
		return "max"
	}
	return strconv.FormatInt(limit, 10)
}

// setMemoryV1 sets the memory limit and the memory+swap limit (OCI's
// swap is the total, as memory.memsw is). The kernel keeps memsw at least
// the limit at every moment, so which goes first depends on the
// direction: try the limit, and on EINVAL raise memsw first.
func setMemoryV1(dir string, limit, swap *int64) error {
	memsw := "memory.memsw.limit_in_bytes"
	if _, err := os.Stat(filepath.Join(dir, memsw)); err != nil && swap != nil {
		if limit == nil || *swap != *limit {
			log.Warningf("the host has no swap accounting: linux.resources.memory.swap is not applied")
		}
		swap = nil
	}
	if limit == nil {
		if swap != nil {
			return writeCgroupFile(dir, memsw, fmtLimit(*swap, "-1"))
		}
		return nil
	}
	err := writeCgroupFile(dir, "memory.limit_in_bytes", fmtLimit(*limit, "-1"))
	if err == nil {
		if swap != nil {
			return writeCgroupFile(dir, memsw, fmtLimit(*swap, "-1"))
		}
		return nil
	}
	if swap == nil || !errors.Is(err, unix.EINVAL) {
		return err
	}
	if err := writeCgroupFile(dir, memsw, fmtLimit(*swap, "-1")); err != nil {
		return err
	}
	return writeCgroupFile(dir, "memory.limit_in_bytes", fmtLimit(*limit, "-1"))
}

// cpuWeight converts cgroup v1 cpu.shares (2..262144) to v2 cpu.weight
// (1..10000) linearly, the conversion runc and crun share.
func cpuWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// ioWeight converts cgroup v1 blkio.weight (10..1000) to v2 io.weight
// (1..10000) linearly, as runc and crun do.
func ioWeight(weight uint16) uint64 {
	if weight == 0 {
		return 0
	}
	w := uint64(min(max(weight, 10), 1000))
	return 1 + (w-10)*9999/990
}

// v2ControllersNeeded lists the controllers r's settings are files of,
// each with the setting that needs it.
func v2ControllersNeeded(r *specs.LinuxResources) map[string]string {
	need := map[string]string{}
	if m := r.Memory; m != nil && (m.Limit != nil || m.Reservation != nil || m.Swap != nil) {
		need["memory"] = "linux.resources.memory"
	}
	if p := r.Pids; p != nil && p.Limit != nil {
		need["pids"] = "linux.resources.pids"
	}
	if cpu := r.CPU; cpu != nil {
		if (cpu.Shares != nil && *cpu.Shares != 0) || (cpu.Quota != nil && *cpu.Quota != 0) || (cpu.Period != nil && *cpu.Period != 0) {
			need["cpu"] = "linux.resources.cpu"
		}
		if cpu.Cpus != "" || cpu.Mems != "" {
			need["cpuset"] = "linux.resources.cpu.cpus/mems"
		}
	}
	if b := r.BlockIO; b != nil && b.Weight != nil && *b.Weight != 0 {
		need["io"] = "linux.resources.blockIO.weight"
	}
	for k := range r.Unified {
		if ctrl, _, ok := strings.Cut(k, "."); ok && ctrl != "cgroup" {
			need[ctrl] = "linux.resources.unified " + k
		}
	}
	return need
}

// checkV2Controllers fails, before anything is written, if a setting of
// r needs a controller the cgroup at dir lacks (cgroup.controllers): on
// a hybrid host every controller is bound to v1 and none is here.
func checkV2Controllers(dir string, r *specs.LinuxResources) error {
	need := v2ControllersNeeded(r)
	if len(need) == 0 {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("reading the cgroup's controllers: %w", err)
	}
	have := strings.Fields(string(data))
	missing := make([]string, 0, len(need))
	for ctrl := range need {
		if !slices.Contains(have, ctrl) {
			missing = append(missing, ctrl)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	return fmt.Errorf("%s needs the %s controller, which cgroup %s does not have (it has %q; the host may bind it to cgroup v1): %w",
		need[missing[0]], strings.Join(missing, ", "), dir, strings.Join(have, " "), ErrNoController)
}

func (c *Cgroup) applyV2(r *specs.LinuxResources) error {
	dir := c.Dirs[""]
	if err := checkV2Controllers(dir, r); err != nil {
		return err
	}
	if m := r.Memory; m != nil {
		if m.Limit != nil {
			if err := writeCgroupFile(dir, "memory.max", fmtLimit(*m.Limit, "max")); err != nil {
				return err
			}
		}
		if m.Reservation != nil {
			if err := writeCgroupFile(dir, "memory.low", fmtLimit(*m.Reservation, "max")); err != nil {
				return err
			}
		}
		if m.Swap != nil {
			// v2 limits swap alone; OCI gives memory+swap.
			v := "max"
			if *m.Swap >= 0 {
				if m.Limit == nil || *m.Limit < 0 {
					return errors.New("linux.resources.memory.swap needs a memory limit on cgroup v2")
				}
				v = strconv.FormatInt(max(*m.Swap-*m.Limit, 0), 10)
			}
			if _, err := os.Stat(filepath.Join(dir, "memory.swap.max")); err != nil {
				log.Warningf("the host has no swap accounting: linux.resources.memory.swap is not applied")
			} else if err := writeCgroupFile(dir, "memory.swap.max", v); err != nil {
				return err
			}
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil {
		if err := writeCgroupFile(dir, "pids.max", pidsMax(*p.Limit)); err != nil {
			return err
		}
	}
	if cpu := r.CPU; cpu != nil {
		if cpu.Shares != nil && *cpu.Shares != 0 {
			if err := writeCgroupFile(dir, "cpu.weight", strconv.FormatUint(cpuWeight(*cpu.Shares), 10)); err != nil {
				return err
			}
		}
		if (cpu.Quota != nil && *cpu.Quota != 0) || (cpu.Period != nil && *cpu.Period != 0) {
			// cpu.max is "QUOTA PERIOD"; keep the half not given.
			cur, _ := os.ReadFile(filepath.Join(dir, "cpu.max"))
			fields := strings.Fields(string(cur))
			quota, period := "max", "100000"
			if len(fields) == 2 {
				quota, period = fields[0], fields[1]
			}
			if cpu.Quota != nil && *cpu.Quota != 0 {
				quota = fmtLimit(*cpu.Quota, "max")
			}
			if cpu.Period != nil && *cpu.Period != 0 {
				period = strconv.FormatUint(*cpu.Period, 10)
			}
			if err := writeCgroupFile(dir, "cpu.max", quota+" "+period); err != nil {
				return err
			}
		}
		if err := c.applyCpuset(cpu); err != nil {
			return err
		}
	}
	if b := r.BlockIO; b != nil && b.Weight != nil && *b.Weight != 0 {
		if err := writeCgroupFile(dir, "io.weight", "default "+strconv.FormatUint(ioWeight(*b.Weight), 10)); err != nil {
			return err
		}
	}
	for k, v := range r.Unified {
		if strings.Contains(k, "/") || k == "cgroup.procs" || k == "cgroup.threads" || k == "cgroup.subtree_control" {
			return fmt.Errorf("linux.resources.unified: %q may not be written", k)
		}
		if err := writeCgroupFile(dir, k, v); err != nil {
			return err
		}
	}
	return nil
}
