package runner

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Expected maps a test ID ("binary:Suite.Case") to the reason it is known
// to fail under runsc.
type Expected map[string]string

// ParseExpected reads an EXPECTED_FAILURES file: one
// `binary:Suite.Case  # reason` per line; blank lines and lines starting
// with '#' are ignored. Every entry needs a reason.
func ParseExpected(r io.Reader) (Expected, error) {
	exp := Expected{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, ok := strings.Cut(line, "#")
		id = strings.TrimSpace(id)
		reason = strings.TrimSpace(reason)
		if !ok || reason == "" {
			return nil, fmt.Errorf("line %d: %q: missing `# reason`", n, line)
		}
		bin, test, ok := strings.Cut(id, ":")
		if !ok || bin == "" || strings.Count(test, ".") < 1 || strings.ContainsAny(id, " \t") {
			return nil, fmt.Errorf("line %d: %q: want `binary:Suite.Case  # reason`", n, line)
		}
		if _, dup := exp[id]; dup {
			return nil, fmt.Errorf("line %d: %s listed twice", n, id)
		}
		exp[id] = reason
	}
	return exp, sc.Err()
}

// FlakyPrefix starts the reason of an entry whose outcome under runsc is
// not stable (it depends on timing or load): such a test may fail or pass
// without failing the run. Use it only with a reason saying why.
const FlakyPrefix = "flaky:"

// IsFlaky reports whether an entry's reason marks the test flaky.
func IsFlaky(reason string) bool { return strings.HasPrefix(reason, FlakyPrefix) }

// LoadExpected parses the file at path.
func LoadExpected(path string) (Expected, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	exp, err := ParseExpected(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return exp, nil
}

// Verdict is the judgement of a suite run.
type Verdict struct {
	// Broken lists tests that fail natively: the test is wrong (or the
	// host lacks something), not the sandbox.
	Broken []string
	// Unexpected lists "platform test" pairs that failed under runsc but
	// are not in EXPECTED_FAILURES.
	Unexpected []string
	// Fixed lists "platform test" pairs in EXPECTED_FAILURES that passed:
	// the entry must be removed so the list only shrinks.
	Fixed []string
	// Stale lists EXPECTED_FAILURES entries naming tests that do not exist
	// in the binaries that ran.
	Stale []string
}

// OK reports whether the run should be considered a success.
func (v Verdict) OK() bool {
	return len(v.Broken) == 0 && len(v.Unexpected) == 0 && len(v.Fixed) == 0 && len(v.Stale) == 0
}

// Judge applies the suite's rules to an outcome.
func Judge(o *Outcome, exp Expected) Verdict {
	var v Verdict
	known := map[string]bool{}
	bins := map[string]bool{}
	for _, t := range o.Tests {
		known[t] = true
		bins[strings.SplitN(t, ":", 2)[0]] = true
	}
	for id := range exp {
		if bins[strings.SplitN(id, ":", 2)[0]] && !known[id] {
			v.Stale = append(v.Stale, id)
		}
	}
	native := o.Results[Native]
	for _, t := range o.Tests {
		nativeFailed := native != nil && native[t].Status == Fail
		if nativeFailed {
			v.Broken = append(v.Broken, t)
		}
		for _, col := range o.Columns {
			if col == Native || o.Results[col] == nil {
				continue
			}
			r := o.Results[col][t]
			_, listed := exp[t]
			switch {
			case nativeFailed:
				// Reported as broken; a sandbox result means nothing.
			case r.Status == Fail && !listed:
				v.Unexpected = append(v.Unexpected, col+" "+t)
			case r.Status == Pass && listed && !IsFlaky(exp[t]):
				v.Fixed = append(v.Fixed, col+" "+t)
			}
		}
	}
	sort.Strings(v.Stale)
	return v
}

// cell renders one table cell.
func cell(o *Outcome, exp Expected, col, test string) string {
	if _, ok := o.Unavailable[col]; ok {
		return "n/a"
	}
	res, ok := o.Results[col]
	if !ok {
		return "-"
	}
	r := res[test]
	_, listed := exp[test]
	switch {
	case col == Native && r.Status == Fail:
		return "BROKEN"
	case r.Status == Fail && listed:
		return "xfail"
	case r.Status == Fail:
		return "FAIL"
	case r.Status == Pass && listed && col != Native:
		return "XPASS"
	}
	return r.Status.String()
}

// WriteTable prints the test case × column table, totals, unavailable
// platforms (with reasons) and the verdict.
func WriteTable(w io.Writer, o *Outcome, exp Expected, v Verdict) {
	width := len("test case")
	for _, t := range o.Tests {
		width = max(width, len(t))
	}
	fmt.Fprintf(w, "%-*s", width, "test case")
	for _, c := range o.Columns {
		fmt.Fprintf(w, "  %-8s", c)
	}
	fmt.Fprintln(w)
	for _, t := range o.Tests {
		fmt.Fprintf(w, "%-*s", width, t)
		for _, c := range o.Columns {
			fmt.Fprintf(w, "  %-8s", cell(o, exp, c, t))
		}
		fmt.Fprintln(w)
	}
	WriteSummary(w, o, exp, v)
}

// WriteSummary prints per-column totals, unavailability and the verdict.
func WriteSummary(w io.Writer, o *Outcome, exp Expected, v Verdict) {
	fmt.Fprintf(w, "\nTOTALS (%d test cases)\n", len(o.Tests))
	for _, c := range o.Columns {
		if reason, ok := o.Unavailable[c]; ok {
			fmt.Fprintf(w, "  %-8s UNAVAILABLE: %s\n", c, reason)
			continue
		}
		counts := map[Status]int{}
		xfail := 0
		for _, t := range o.Tests {
			r := o.Results[c][t]
			counts[r.Status]++
			if _, listed := exp[t]; listed && r.Status == Fail && c != Native {
				xfail++
			}
		}
		fmt.Fprintf(w, "  %-8s pass %d  fail %d (expected %d)  skip %d  no-result %d  [%v]\n",
			c, counts[Pass], counts[Fail], xfail, counts[Skip], counts[NotRun], o.Elapsed[c].Round(1e8))
	}
	for _, c := range o.Columns {
		if reason, ok := o.Unavailable[c]; ok {
			fmt.Fprintf(w, "\n*** PLATFORM %s UNAVAILABLE — its column was not run ***\n*** reason: %s\n", c, reason)
		}
	}
	list := func(title string, items []string) {
		if len(items) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s (%d):\n", title, len(items))
		for _, it := range items {
			fmt.Fprintf(w, "  %s\n", it)
		}
	}
	list("BROKEN TESTS (fail natively; fix the test, not the sandbox)", v.Broken)
	list("UNEXPECTED FAILURES under runsc (not in EXPECTED_FAILURES)", v.Unexpected)
	list("NOW PASSING — remove from EXPECTED_FAILURES", v.Fixed)
	list("STALE EXPECTED_FAILURES entries (no such test)", v.Stale)
	if v.OK() {
		fmt.Fprintln(w, "\nRESULT: OK")
	} else {
		fmt.Fprintln(w, "\nRESULT: FAILED")
	}
}

// FailureDetails prints the failure message of every failing cell.
func FailureDetails(w io.Writer, o *Outcome, exp Expected) {
	for _, c := range o.Columns {
		for _, t := range o.Tests {
			r := o.Results[c][t]
			if r.Status != Fail {
				continue
			}
			if _, listed := exp[t]; listed && c != Native {
				continue
			}
			fmt.Fprintf(w, "--- %s %s\n%s\n", c, t, strings.TrimSpace(r.Message))
		}
	}
}

// CurrentFailures renders the failing runsc tests in EXPECTED_FAILURES
// format, for seeding the file once a platform first runs programs.
func CurrentFailures(o *Outcome) string {
	why := map[string][]string{}
	for _, c := range o.Columns {
		if c == Native {
			continue
		}
		for _, t := range o.Tests {
			if o.Results[c][t].Status == Fail && o.Results[Native][t].Status != Fail {
				why[t] = append(why[t], c)
			}
		}
	}
	var ids []string
	for t := range why {
		ids = append(ids, t)
	}
	sort.Strings(ids)
	var b strings.Builder
	for _, t := range ids {
		fmt.Fprintf(&b, "%s  # fails on %s\n", t, strings.Join(why[t], ","))
	}
	return b.String()
}
