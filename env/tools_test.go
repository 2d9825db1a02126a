package env

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/reward"
)

func TestCalculator(t *testing.T) {
	tests := []struct{ expr, want, err string }{
		{"12*34", "408", ""},
		{"123456789 * 987654321", "121932631112635269", ""},
		{"99999999999999999999 * 99999999999999999999", "9999999999999999999800000000000000000001", ""}, // beyond float64 and int64
		{"1/3 + 1/6", "1/2", ""},
		{"0.1 + 0.2", "3/10", ""}, // exact, not 0.30000000000000004
		{"-(2+3)*4 - -1", "-19", ""},
		{"2^3^2", "512", ""}, // right-associative
		{"2^-2", "1/4", ""},
		{"  7 ", "7", ""},
		{"1/0", "", "division by zero"},
		{"2^100000", "", "exponent"},
		{"2^4096^2", "", "exponent"},
		{"(1+2", "", "missing )"},
		{"1+", "", "unexpected end"},
		{"import os", "", "unexpected"},
		{"1.2.3", "", "bad number"},
		{strings.Repeat("(", 150) + "1" + strings.Repeat(")", 150), "", "nested"},
	}
	for _, tt := range tests {
		args, _ := json.Marshal(map[string]string{"expression": tt.expr})
		got, err := Calculator{}.Call(context.Background(), args)
		if (err != nil) != (tt.err != "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%q: err = %v, want %q", tt.expr, err, tt.err)
			continue
		}
		if got != tt.want {
			t.Errorf("%q = %q, want %q", tt.expr, got, tt.want)
		}
	}
	if _, err := (Calculator{}).Call(context.Background(), json.RawMessage(`{"expr": "1"}`)); err == nil || !strings.Contains(err.Error(), `"expression"`) {
		t.Errorf("missing argument: err = %v", err)
	}
}

func TestSearch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "corpus.jsonl")
	corpus := `{"id": "d1", "title": "Go", "text": "Go is a programming language made at Google."}
{"id": "d2", "title": "Python", "text": "Python is a programming language."}

{"id": "d3", "title": "Paris", "text": "Paris is the capital of France."}
`
	if err := os.WriteFile(path, []byte(corpus), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSearch(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	call := func(q string) string {
		out, err := s.Call(context.Background(), json.RawMessage(`{"query": "`+q+`"}`))
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		return out
	}
	// Two words match d1 (go, google), one matches d2: d1 first.
	if got, want := call("Google GO language?"), "[d1] Go: Go is a programming language made at Google.\n[d2] Python: Python is a programming language."; got != want {
		t.Errorf("search = %q, want %q", got, want)
	}
	if got := call("capital"); got != "[d3] Paris: Paris is the capital of France." {
		t.Errorf("search capital = %q", got)
	}
	if got := call("zebra"); got != "no results" {
		t.Errorf("search zebra = %q", got)
	}
	if err := os.WriteFile(path, []byte("{\"id\": 1, \"text\": \"x\"}\n{bad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSearch(path, 1); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("malformed corpus: err = %v, want one naming line 1", err)
	}
}

// TestPythonTool runs the sandboxed Python tool (bubblewrap and python3 are installed by .ci/run).
func TestPythonTool(t *testing.T) {
	sb, err := reward.NewSandbox(reward.DefaultSandboxConfig())
	if err != nil {
		t.Fatalf("sandbox (install bubblewrap and python3, see .ci/run): %v", err)
	}
	p := Python{Sandbox: sb}
	out, err := p.Call(context.Background(), json.RawMessage(`{"code": "print(2**100)"}`))
	if err != nil || out != "1267650600228229401496703205376\n" {
		t.Errorf("print(2**100) = %q, %v", out, err)
	}
	_, err = p.Call(context.Background(), json.RawMessage(`{"code": "raise ValueError('nope')"}`))
	if err == nil || !strings.Contains(err.Error(), "ValueError: nope") {
		t.Errorf("failing program: err = %v, want the exception", err)
	}
}
