package benchmarks

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSampleStatistics(t *testing.T) {
	s := Sample{Values: []float64{5, 1, 3}}
	if s.Median() != 3 || s.Min() != 1 || s.Max() != 5 {
		t.Fatalf("odd: median %v min %v max %v", s.Median(), s.Min(), s.Max())
	}
	s.Values = []float64{4, 1, 3, 2}
	if s.Median() != 2.5 {
		t.Fatalf("even median = %v", s.Median())
	}
	if (Sample{}).Median() != 0 {
		t.Fatal("empty median")
	}
}

// fakeRuntime returns fixed figures, or fails.
type fakeRuntime struct {
	name  string
	value float64
	err   error
	calls int
}

func (f *fakeRuntime) Name() string { return f.name }
func (f *fakeRuntime) Run(context.Context, Workload) (float64, error) {
	f.calls++
	return f.value, f.err
}

func TestRunTableAndChart(t *testing.T) {
	native := &fakeRuntime{name: "native", value: 100}
	slow := &fakeRuntime{name: "runc", value: 250}
	broken := &fakeRuntime{name: "runsc-ptrace", err: errors.New("cannot run programs yet")}
	ws := []Workload{{Name: "getpid", Kind: Micro}, {Name: "start_true", Kind: Macro}}
	samples := Run(context.Background(), ws, []Runtime{native, slow, broken}, Options{Runs: 3, Timeout: time.Second})
	if len(samples) != 6 || native.calls != 6 || broken.calls != 2 {
		t.Fatalf("%d samples, native ran %d times, broken %d (a failing runtime must not be retried)", len(samples), native.calls, broken.calls)
	}
	res := Results{Machine: Machine{Cores: 2, Runs: 3}, Samples: samples}
	var table bytes.Buffer
	res.WriteTable(&table, []string{"native", "runc", "runsc-ptrace"})
	for _, want := range []string{"×2.50", "fails: cannot run programs yet", "ns/op", "ms", "2 cores"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var svg bytes.Buffer
	if err := res.WriteSVG(&svg, []string{"native", "runc", "runsc-ptrace"}); err != nil {
		t.Fatal(err)
	}
	bars := 0
	dec := xml.NewDecoder(&svg)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			for _, a := range se.Attr {
				if a.Name.Local == "fill" && a.Value == "#4e79a7" {
					bars++
				}
			}
		}
	}
	// runc's colour: one legend swatch plus one bar per workload.
	if bars != 3 {
		t.Errorf("chart has %d runc rects, want 3", bars)
	}
	var js bytes.Buffer
	if err := res.WriteJSON(&js); err != nil || !strings.Contains(js.String(), `"error": "cannot run programs yet"`) {
		t.Errorf("JSON = %v, %s", err, js.String())
	}
}

func TestParseMicro(t *testing.T) {
	v, err := parseMicro([]byte("noise\n{\"name\":\"getpid\",\"ops\":10,\"ns_per_op\":12.5}\n"))
	if err != nil || v != 12.5 {
		t.Fatalf("parseMicro = %v, %v", v, err)
	}
	if _, err := parseMicro([]byte("garbage")); err == nil {
		t.Fatal("parseMicro accepted garbage")
	}
}

// prepare builds the inputs under /var/tmp, on the root filesystem as the
// container runtimes need.
func prepare(t *testing.T) *Inputs {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed (make deps installs it)")
	}
	dir, err := os.MkdirTemp("/var/tmp", "carapace-bench-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	in, err := Prepare(dir)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestEveryMicroWorkloadRunsNatively(t *testing.T) {
	in := prepare(t)
	old := MicroSeconds
	MicroSeconds = 0.02
	defer func() { MicroSeconds = old }()
	for _, w := range in.Workloads() {
		if w.Kind != Micro {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		v, err := Native{}.Run(ctx, w)
		cancel()
		if err != nil || v <= 0 {
			t.Errorf("%s: %v, %v", w.Name, v, err)
		}
	}
}

func TestRuncRunsTheSameWorkloads(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runc and the overlay bundle need root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed (make deps installs it)")
	}
	in := prepare(t)
	b, err := NewBundle(filepath.Join(in.Dir, "bundle"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			t.Errorf("closing the bundle: %v", err)
		}
	}()
	old := MicroSeconds
	MicroSeconds = 0.02
	defer func() { MicroSeconds = old }()
	rc := &Runc{Bundle: b}
	for _, w := range in.Workloads() {
		if w.Name != "getpid" && w.Name != "start_true" && w.Name != "idle_memory" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		v, err := rc.Run(ctx, w)
		cancel()
		if err != nil || v <= 0 {
			t.Errorf("runc %s: %v, %v", w.Name, v, err)
		}
	}
	if out, _ := exec.Command("runc", "list", "-q").Output(); strings.Contains(string(out), "bench-") {
		t.Errorf("containers left behind: %s", out)
	}
}
