package log

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestLevelsAndFormats(t *testing.T) {
	var buf bytes.Buffer
	SetTarget(&buf, Text)
	SetLevel(Info)
	Debugf("hidden %d", 1)
	Infof("shown %d", 2)
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), "shown 2") {
		t.Fatalf("text output = %q", buf.String())
	}
	buf.Reset()
	SetTarget(&buf, JSON)
	Warningf("careful")
	var m map[string]string
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m["msg"] != "careful" || m["level"] != "warning" {
		t.Fatalf("json output %q: %v", buf.String(), err)
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("ParseFormat accepted xml")
	}
}
