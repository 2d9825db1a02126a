package main

import (
	"strings"
	"testing"
)

// TestVerifyCodeWrongTypedTests: "tests" that are a JSON object or number are an error verdict
// (correct false, a reason, exit 2), never a pass (issue 14, item 9).
func TestVerifyCodeWrongTypedTests(t *testing.T) {
	stdin := `{"program": "print(1)", "tests": {}}
{"program": "print(1)", "tests": 5}
{"program": "print(1)", "tests": null}
{"program": "print(1)", "tests": []}
{"program": "print(1)", "tests": "5"}`
	code, res, stderr := runVerifyCmd(t, stdin, "--kind", "code")
	if code != 2 || !strings.Contains(stderr, `"tests" must be a list of {"input","output"} or a string of Python asserts, got {}`) {
		t.Fatalf("exit %d, stderr %q; want exit 2 naming the wrong-typed tests", code, stderr)
	}
	if len(res) != 5 {
		t.Fatalf("%d verdicts, want 5 (one per line): %+v", len(res), res)
	}
	reasons := []string{"got {}", "got 5", "tests", "empty list", "no assert statement"}
	for i, r := range res {
		if r.Correct || r.Value != 0 || !strings.Contains(r.Reason, reasons[i]) {
			t.Errorf("line %d: %+v, want an error verdict with reason ~%q", i+1, r, reasons[i])
		}
	}
}
