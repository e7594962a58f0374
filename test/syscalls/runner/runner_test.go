package runner

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseTestList(t *testing.T) {
	out := []byte("Running main() from gtest_main.cc\nPipe.\n  DataFlows\n  Eof\nTyped/0.  # TypeParam = int\n  Case  # GetParam() = 3\n")
	got := parseTestList(out)
	want := []string{"Pipe.DataFlows", "Pipe.Eof", "Typed/0.Case"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseTestList = %q, want %q", got, want)
	}
}

func TestTextResults(t *testing.T) {
	out := []byte(`[ RUN      ] A.Pass
[       OK ] A.Pass (0 ms)
[ RUN      ] A.Fail
j.cc:3: Failure
boom
[  FAILED  ] A.Fail (1 ms)
[ RUN      ] A.Skip
[  SKIPPED ] A.Skip (0 ms)
[ RUN      ] A.Crash
partial output
[  FAILED  ] A.Fail
`)
	res, running := textResults(out)
	if running != "A.Crash" {
		t.Errorf("running = %q, want A.Crash", running)
	}
	if res["A.Pass"].Status != Pass || res["A.Skip"].Status != Skip || res["A.Fail"].Status != Fail {
		t.Errorf("results = %+v", res)
	}
	if !strings.Contains(res["A.Fail"].Message, "boom") {
		t.Errorf("failure message = %q", res["A.Fail"].Message)
	}
	if _, ok := res["A.Crash"]; ok {
		t.Errorf("crashed test has a result")
	}
}

func TestJSONResults(t *testing.T) {
	b := []byte(`{"testsuites":[{"name":"A","testsuite":[
	 {"name":"P","status":"RUN","result":"COMPLETED"},
	 {"name":"F","status":"RUN","result":"COMPLETED","failures":[{"failure":"x.cc:1\nbad"}]},
	 {"name":"S","status":"RUN","result":"SKIPPED"},
	 {"name":"N","status":"NOTRUN","result":"SUPPRESSED"}]}]}`)
	res, err := jsonResults(b)
	if err != nil {
		t.Fatal(err)
	}
	if res["A.P"].Status != Pass || res["A.F"].Status != Fail || res["A.S"].Status != Skip {
		t.Errorf("results = %+v", res)
	}
	if _, ok := res["A.N"]; ok {
		t.Errorf("filtered-out test reported")
	}
	if _, err := jsonResults([]byte("{")); err == nil {
		t.Errorf("truncated json accepted")
	}
}

func TestParseExpected(t *testing.T) {
	exp, err := ParseExpected(strings.NewReader("# comment\n\npipe:Pipe.Eof  # needs splice\n"))
	if err != nil {
		t.Fatal(err)
	}
	if exp["pipe:Pipe.Eof"] != "needs splice" || len(exp) != 1 {
		t.Errorf("exp = %v", exp)
	}
	for _, bad := range []string{
		"pipe:Pipe.Eof\n",                  // no reason
		"pipe:Pipe.Eof #\n",                // empty reason
		"Pipe.Eof  # r\n",                  // no binary
		"pipe:PipeEof  # r\n",              // no suite
		"pipe:A.B # r\npipe:A.B # again\n", // duplicate
		"pipe:A.B extra # r\n",             // junk
	} {
		if _, err := ParseExpected(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseExpected(%q) accepted", bad)
		}
	}
}

func TestJudge(t *testing.T) {
	o := &Outcome{
		Columns:     []string{Native, "ptrace", "kvm"},
		Unavailable: map[string]string{"kvm": "no /dev/kvm"},
		Tests:       []string{"b:A.Broken", "b:A.Fixed", "b:A.New", "b:A.Known", "b:A.Ok"},
		Results: map[string]map[string]Result{
			Native:   {"b:A.Broken": {Status: Fail}, "b:A.Fixed": {Status: Pass}, "b:A.New": {Status: Pass}, "b:A.Known": {Status: Pass}, "b:A.Ok": {Status: Pass}},
			"ptrace": {"b:A.Broken": {Status: Fail}, "b:A.Fixed": {Status: Pass}, "b:A.New": {Status: Fail}, "b:A.Known": {Status: Fail}, "b:A.Ok": {Status: Skip}},
		},
	}
	exp := Expected{"b:A.Fixed": "r", "b:A.Known": "r", "b:A.Gone": "r", "other:A.X": "r"}
	v := Judge(o, exp)
	if !reflect.DeepEqual(v.Broken, []string{"b:A.Broken"}) ||
		!reflect.DeepEqual(v.Unexpected, []string{"ptrace b:A.New"}) ||
		!reflect.DeepEqual(v.Fixed, []string{"ptrace b:A.Fixed"}) ||
		!reflect.DeepEqual(v.Stale, []string{"b:A.Gone"}) {
		t.Errorf("verdict = %+v", v)
	}
	if v.OK() {
		t.Error("verdict OK")
	}
	var buf bytes.Buffer
	WriteTable(&buf, o, exp, v)
	for _, want := range []string{"BROKEN", "XPASS", "xfail", "FAIL", "n/a", "UNAVAILABLE: no /dev/kvm", "RESULT: FAILED"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
	if got := CurrentFailures(o); got != "b:A.Known  # fails on ptrace\nb:A.New  # fails on ptrace\n" {
		t.Errorf("CurrentFailures = %q", got)
	}
}

// TestRunShardRecoversFromCrash runs a fake gtest binary (a shell script)
// that dies in its second test, and checks the runner records the crash
// against that test and re-runs the rest.
func TestRunShardRecoversFromCrash(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "fake")
	body := `#!/bin/sh
case "$1" in
--gtest_filter=*) f="${1#--gtest_filter=}";;
esac
for t in $(echo "$f" | tr ':' ' '); do
  echo "[ RUN      ] $t"
  case "$t" in
  A.Crash) kill -SEGV $$;;
  A.Hang) sleep 60;;
  esac
  echo "[       OK ] $t (0 ms)"
done
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	s := Shard{Bin: Binary{Name: "fake", Path: script}, Tests: []string{"A.One", "A.Crash", "A.Two", "A.Hang", "A.Three"}}
	start := time.Now()
	res := RunShard(context.Background(), Launcher{Platform: Native}, s, 2*time.Second, dir)
	if time.Since(start) > 30*time.Second {
		t.Errorf("RunShard took %v", time.Since(start))
	}
	for _, p := range []string{"A.One", "A.Two", "A.Three"} {
		if res[p].Status != Pass {
			t.Errorf("%s = %+v, want pass", p, res[p])
		}
	}
	if res["A.Crash"].Status != Fail || !strings.Contains(res["A.Crash"].Message, "abnormally") {
		t.Errorf("A.Crash = %+v", res["A.Crash"])
	}
	if res["A.Hang"].Status != Fail || !strings.Contains(res["A.Hang"].Message, "timed out") {
		t.Errorf("A.Hang = %+v", res["A.Hang"])
	}
}

func TestProbeMissingRunsc(t *testing.T) {
	err := Probe(context.Background(), Launcher{Platform: "ptrace", Runsc: filepath.Join(t.TempDir(), "nope")}, time.Second)
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Probe = %v", err)
	}
}

func TestMakeShards(t *testing.T) {
	bins := []Binary{{Name: "a"}, {Name: "b"}}
	sh := MakeShards(bins, map[string][]string{"a": {"1", "2", "3"}, "b": {"4"}}, 2)
	if len(sh) != 3 || len(sh[0].Tests) != 2 || len(sh[1].Tests) != 1 || sh[2].Bin.Name != "b" {
		t.Errorf("shards = %+v", sh)
	}
}

// fakeGtest is a shell stand-in for a gtest binary: it lists three tests,
// honours --gtest_filter and fails the test named in $FAKE_FAIL.
const fakeGtest = `#!/bin/sh
for a in "$@"; do
  case "$a" in
  --gtest_list_tests) printf 'A.\n  One\n  Two\n  Three\n'; exit 0;;
  --gtest_filter=*) f="${a#--gtest_filter=}";;
  esac
done
for t in $(echo "$f" | tr ':' ' '); do
  echo "[ RUN      ] $t"
  if [ "$t" = "$FAKE_FAIL" ]; then
    echo "fake failure"
    echo "[  FAILED  ] $t (0 ms)"
  else
    echo "[       OK ] $t (0 ms)"
  fi
done
`

// fakeRunsc mimics `runsc --platform=P do BIN ARGS`: platform "broken"
// cannot start anything, "partial" makes A.Two fail, others pass.
const fakeRunsc = `#!/bin/sh
plat="${1#--platform=}"; shift
[ "$1" = do ] || exit 2
shift
case "$plat" in
broken) echo "sandbox: cannot start" >&2; exit 1;;
partial) FAKE_FAIL=A.Two; export FAKE_FAIL;;
esac
exec "$@"
`

// TestRunSuiteWithFakeRunsc drives the whole runsc path (probe, sharding,
// console parsing, judging) with stand-ins, since the real runsc cannot
// run programs yet.
func TestRunSuiteWithFakeRunsc(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake")
	runsc := filepath.Join(dir, "runsc")
	if err := os.WriteFile(bin, []byte(fakeGtest), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(runsc, []byte(fakeRunsc), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAKE_FAIL", "")
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	o, err := RunSuite(context.Background(), []Binary{{Name: "fake", Path: bin}}, Options{
		Platforms: []string{"ok", "partial", "broken"},
		Runsc:     runsc,
		Parallel:  2,
		PerShard:  2,
		Timeout:   time.Minute,
		TmpDir:    tmp,
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"fake:A.One", "fake:A.Three", "fake:A.Two"}; !reflect.DeepEqual(o.Tests, want) {
		t.Fatalf("tests = %q, want %q", o.Tests, want)
	}
	if !strings.Contains(o.Unavailable["broken"], "cannot start") {
		t.Errorf("broken platform: unavailable = %q", o.Unavailable["broken"])
	}
	if r := o.Results["partial"]["fake:A.Two"]; r.Status != Fail || !strings.Contains(r.Message, "fake failure") {
		t.Errorf("partial A.Two = %+v", r)
	}
	for _, col := range []string{Native, "ok"} {
		for _, id := range o.Tests {
			if o.Results[col][id].Status != Pass {
				t.Errorf("%s %s = %+v", col, id, o.Results[col][id])
			}
		}
	}
	// Listed failure that still fails on "partial" but passes on "ok":
	// the list must shrink, so the run fails with a NOW PASSING entry.
	v := Judge(o, Expected{"fake:A.Two": "known"})
	if len(v.Broken) != 0 || len(v.Unexpected) != 0 || !reflect.DeepEqual(v.Fixed, []string{"ok fake:A.Two"}) {
		t.Errorf("verdict = %+v", v)
	}
	// Unlisted, the "partial" failure is unexpected.
	v = Judge(o, Expected{})
	if !reflect.DeepEqual(v.Unexpected, []string{"partial fake:A.Two"}) || v.OK() {
		t.Errorf("verdict = %+v", v)
	}
	if fi, err := os.Stat(tmp); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("tmp dir mode = %v, %v; want world-accessible", fi.Mode(), err)
	}
}

// TestBuildIsIncremental builds a one-test source, checks that an
// unchanged source is not rebuilt, that an edited one is, and that a
// compile error is reported with the compiler's message.
func TestBuildIsIncremental(t *testing.T) {
	if err := CheckToolchain(); err != nil {
		t.Skip(err)
	}
	src := t.TempDir()
	out := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("test_util.h", "#include <gtest/gtest.h>\n")
	write("one.cc", "#include \"test_util.h\"\nTEST(One, Passes) { EXPECT_EQ(1, 1); }\n")
	var log strings.Builder
	ctx := context.Background()
	bins, err := Build(ctx, src, out, 2, nil, &log)
	if err != nil || len(bins) != 1 || bins[0].Name != "one" {
		t.Fatalf("Build = %+v, %v\n%s", bins, err, log.String())
	}
	if tests, err := ListTests(ctx, bins[0].Path); err != nil || !reflect.DeepEqual(tests, []string{"One.Passes"}) {
		t.Fatalf("ListTests = %q, %v", tests, err)
	}
	first, err := os.Stat(bins[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Build(ctx, src, out, 2, nil, &log); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Stat(bins[0].Path); !again.ModTime().Equal(first.ModTime()) {
		t.Error("unchanged source was rebuilt")
	}
	write("one.cc", "#include \"test_util.h\"\nTEST(One, Passes) {}\nTEST(One, Second) {}\n")
	if _, err := Build(ctx, src, out, 2, nil, &log); err != nil {
		t.Fatal(err)
	}
	if tests, _ := ListTests(ctx, bins[0].Path); len(tests) != 2 {
		t.Errorf("edited source not rebuilt: tests = %q", tests)
	}
	write("bad.cc", "this is not C++\n")
	log.Reset()
	if _, err := Build(ctx, src, out, 2, func(n string) bool { return n == "bad" }, &log); err == nil ||
		!strings.Contains(log.String(), "bad.cc") {
		t.Errorf("bad source: err = %v, log = %s", err, log.String())
	}
}

func TestFlakyEntriesMayPass(t *testing.T) {
	o := &Outcome{
		Columns: []string{Native, "ptrace"},
		Tests:   []string{"b:A.Flaky", "b:A.Fixed"},
		Results: map[string]map[string]Result{
			Native:   {"b:A.Flaky": {Status: Pass}, "b:A.Fixed": {Status: Pass}},
			"ptrace": {"b:A.Flaky": {Status: Pass}, "b:A.Fixed": {Status: Pass}},
		},
	}
	v := Judge(o, Expected{"b:A.Flaky": "flaky: depends on scheduling", "b:A.Fixed": "missing syscall"})
	if !reflect.DeepEqual(v.Fixed, []string{"ptrace b:A.Fixed"}) {
		t.Fatalf("Fixed = %v; a flaky entry that passes must not count as fixed", v.Fixed)
	}
}
