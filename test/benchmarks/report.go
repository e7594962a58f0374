package benchmarks

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Machine describes where the figures were taken.
type Machine struct {
	Cores       int     `json:"cores"`
	CPU         string  `json:"cpu"`
	Kernel      string  `json:"kernel"`
	LoadBefore  string  `json:"load_before"`
	LoadAfter   string  `json:"load_after"`
	Time        string  `json:"time"`
	MicroSecond float64 `json:"micro_seconds"`
	Runs        int     `json:"runs"`
}

// DescribeMachine reads the core count, CPU model, kernel and load.
func DescribeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Time: time.Now().UTC().Format(time.RFC3339), LoadBefore: loadavg()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Finish records the load after the run.
func (m *Machine) Finish() { m.LoadAfter = loadavg() }

// Results is what one harness run wrote.
type Results struct {
	Machine Machine  `json:"machine"`
	Samples []Sample `json:"samples"`
}

// WriteJSON writes r as indented JSON.
func (r *Results) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func format(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// WriteTable prints one row per workload and one column per runtime:
// "median (min–max) ×ratio", or "fails: <error>".
func (r *Results) WriteTable(w io.Writer, runtimes []string) {
	m := r.Machine
	fmt.Fprintf(w, "machine: %d cores, %s, kernel %s; load %s before, %s after; %d runs each, micro ≥ %gs\n",
		m.Cores, m.CPU, m.Kernel, m.LoadBefore, m.LoadAfter, m.Runs, m.MicroSecond)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "workload\tunit\t%s\n", strings.Join(runtimes, "\t"))
	for _, name := range r.workloadNames() {
		var unit string
		cells := make([]string, len(runtimes))
		for i, rt := range runtimes {
			cells[i] = "-"
			for _, s := range r.Samples {
				if s.Workload != name || s.Runtime != rt {
					continue
				}
				unit = s.Unit
				if s.Error != "" {
					cells[i] = "fails: " + truncate(s.Error, 60)
					continue
				}
				cells[i] = fmt.Sprintf("%s (%s–%s)", format(s.Median()), format(s.Min()), format(s.Max()))
				if ratio, ok := Ratio(r.Samples, s, "native"); ok && rt != "native" {
					cells[i] += fmt.Sprintf(" ×%s", format(ratio))
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, unit, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func (r *Results) workloadNames() []string {
	var names []string
	seen := map[string]bool{}
	for _, s := range r.Samples {
		if !seen[s.Workload] {
			seen[s.Workload] = true
			names = append(names, s.Workload)
		}
	}
	return names
}

// WriteSVG draws a horizontal bar chart of each runtime's ratio to native
// per workload, on a log₂ axis (1× is native; a failed workload shows its
// label instead of a bar).
func (r *Results) WriteSVG(w io.Writer, runtimes []string) error {
	var others []string
	for _, rt := range runtimes {
		if rt != "native" {
			others = append(others, rt)
		}
	}
	names := r.workloadNames()
	const (
		left, right, top, barH, gap, width = 170, 40, 50, 14, 10, 900
	)
	colors := []string{"#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1"}
	maxRatio := 2.0
	for _, s := range r.Samples {
		if ratio, ok := Ratio(r.Samples, s, "native"); ok && ratio > maxRatio {
			maxRatio = ratio
		}
	}
	maxExp := math.Ceil(math.Log2(maxRatio))
	minExp := -1.0
	x := func(ratio float64) float64 {
		e := math.Max(math.Log2(ratio), minExp)
		return left + (e-minExp)/(maxExp-minExp)*(width-left-right)
	}
	groupH := float64(len(others))*barH + gap
	height := top + groupH*float64(len(names)) + 40
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%d" y="18" font-size="14">Time (or memory) relative to native, log scale: shorter is better</text>`+"\n", left)
	for i, rt := range others {
		fmt.Fprintf(w, `<rect x="%d" y="28" width="10" height="10" fill="%s"/><text x="%d" y="37">%s</text>`+"\n",
			left+i*150, colors[i%len(colors)], left+i*150+14, html.EscapeString(rt))
	}
	for e := minExp; e <= maxExp; e++ {
		gx := x(math.Pow(2, e))
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.0f" stroke="%s"/>`+"\n", gx, top-5, gx, height-30, map[bool]string{true: "#333", false: "#ddd"}[e == 0])
		fmt.Fprintf(w, `<text x="%.1f" y="%.0f" text-anchor="middle">%s×</text>`+"\n", gx, height-15, format(math.Pow(2, e)))
	}
	for gi, name := range names {
		gy := top + groupH*float64(gi)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, gy+groupH/2, html.EscapeString(name))
		for i, rt := range others {
			y := gy + float64(i)*barH
			for _, s := range r.Samples {
				if s.Workload != name || s.Runtime != rt {
					continue
				}
				if ratio, ok := Ratio(r.Samples, s, "native"); ok {
					fmt.Fprintf(w, `<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="%s"><title>%s %s: ×%s</title></rect>`+"\n",
						left, y, math.Max(x(ratio)-left, 1), barH-2, colors[i%len(colors)], html.EscapeString(name), html.EscapeString(rt), format(ratio))
					fmt.Fprintf(w, `<text x="%.1f" y="%.1f">×%s</text>`+"\n", math.Max(x(ratio), left)+3, y+barH-4, format(ratio))
				} else if s.Error != "" {
					fmt.Fprintf(w, `<text x="%d" y="%.1f" fill="%s">%s fails: %s</text>`+"\n",
						left+3, y+barH-4, colors[i%len(colors)], html.EscapeString(rt), html.EscapeString(truncate(s.Error, 90)))
				}
			}
		}
	}
	_, err := fmt.Fprintln(w, "</svg>")
	return err
}
