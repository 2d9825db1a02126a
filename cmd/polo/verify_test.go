package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func runVerifyCmd(t *testing.T, stdin string, args ...string) (int, []verifyOut, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"verify"}, args...), strings.NewReader(stdin), &out, &errb)
	var res []verifyOut
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" {
			continue
		}
		var v verifyOut
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		res = append(res, v)
	}
	return code, res, errb.String()
}

func TestVerifyCommand(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		stdin   string
		code    int
		correct []bool
		values  []float64
		extr    []string
		stderr  string
	}{
		{"math", []string{"--kind", "math"},
			`{"response": "so \\boxed{\\dfrac{1}{2}}", "answer": "0.5"}
{"response": "\\boxed{(1,2)}", "answer": "[1,2]"}
{"response": "Answer: 1,000", "answer": 1000}`,
			0, []bool{true, false, true}, []float64{1, 0, 1}, []string{`\dfrac{1}{2}`, "(1,2)", "1,000"}, ""},
		{"blank line keeps alignment", []string{"--kind", "math"},
			`{"response": "\\boxed{2}", "answer": "2"}

{"response": "\\boxed{3}", "answer": "3"}`,
			2, []bool{true, false, true}, []float64{1, 0, 1}, []string{"2", "", "3"}, "1 malformed input line(s); first: stdin line 2: empty line"},
		{"zero timeout", []string{"--kind", "math", "--timeout", "0"}, "", 2, nil, nil, nil, "--timeout must be a positive duration"},
		{"negative timeout", []string{"--kind", "math", "--timeout", "-1s"}, "", 2, nil, nil, nil, "--timeout must be a positive duration"},
		{"numeric with reward values", []string{"--kind", "numeric", "--opt", "correct=1", "--opt", "incorrect=-1"},
			`{"response": "#### 72", "answer": "72"}
{"response": "it is 0.49", "answer": "0.5"}`,
			0, []bool{true, false}, []float64{1, -1}, []string{"72", "0.49"}, ""},
		{"dapo", []string{"--kind", "math_dapo"}, `{"response": "Answer: 7", "answer": "8"}`,
			0, []bool{false}, []float64{-1}, []string{"7"}, ""},
		{"task", []string{"--kind", "task"}, `{"response": "7+3*5", "answer": "3*5+7", "meta": {"task": "countdown", "nums": "3,5,7", "target": "22"}}`,
			0, []bool{true}, []float64{1}, []string{"7+3*5"}, ""},
		{"format", []string{"--kind", "format"}, `{"response": "<think>\nhm\n</think>\n<answer>\n4\n</answer>"}`,
			0, []bool{true}, []float64{1}, []string{"4"}, ""},
		{"code", []string{"--kind", "code"},
			`{"program": "print(int(input()) * 2)", "tests": [{"input": "21\n", "output": "42\n"}]}
{"program": "def f(x):\n    return x + 1", "tests": "assert f(1) == 3"}
{"program": "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)", "tests": "assert True"}`,
			0, []bool{true, false, false}, []float64{1, 0, 0}, nil, ""},
		{"malformed line keeps alignment", []string{"--kind", "exact"},
			`{"response": "a", "answer": "a"}
not json
{"response": "b", "answer": ["b"]}
{"response": "c", "answer": "c"}`,
			2, []bool{true, false, false, true}, []float64{1, 0, 0, 1}, nil, "2 malformed input line(s); first: stdin line 2: not a JSON object"},
		{"unknown kind", []string{"--kind", "maths"}, "", 2, nil, nil, nil, `unknown verifier kind "maths"`},
		{"missing kind", nil, "", 2, nil, nil, nil, "need --kind"},
		{"bad option", []string{"--kind", "math", "--opt", "nope"}, "", 2, nil, nil, nil, `want key=value, got "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, res, stderr := runVerifyCmd(t, tt.stdin, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("exit %d stderr %q, want %d ~%q", code, stderr, tt.code, tt.stderr)
			}
			if len(res) != len(tt.correct) {
				t.Fatalf("%d output lines, want %d: %+v", len(res), len(tt.correct), res)
			}
			for i, r := range res {
				if r.Correct != tt.correct[i] || r.Value != tt.values[i] || (tt.extr != nil && r.Extracted != tt.extr[i]) {
					t.Errorf("line %d: %+v, want correct=%v value=%v", i+1, r, tt.correct[i], tt.values[i])
				}
			}
		})
	}
	// The code verdicts carry the reason of the failure.
	_, res, _ := runVerifyCmd(t, `{"program": "def f(x):\n    return x + 1", "tests": "assert f(1) == 3"}`, "--kind", "code")
	if len(res) != 1 || !strings.Contains(res[0].Reason, "AssertionError") {
		t.Fatalf("code reason: %+v", res)
	}
}
