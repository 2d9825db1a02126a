package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/polo-rl/polo/reward"
	"github.com/polo-rl/polo/task"
)

func init() {
	register("verify", "score responses with a verifier (JSONL in, one JSON verdict per line out)", runVerify)
}

// verifyOpts collects repeated --opt key=value flags (verifier options).
type verifyOpts map[string]string

func (o verifyOpts) String() string { return fmt.Sprint(map[string]string(o)) }
func (o verifyOpts) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	o[strings.TrimSpace(k)] = val
	return nil
}

// verifyIn is one input line. Code tasks use program and tests; everything else response and
// answer. answer may be a JSON string or number; meta carries task metadata (kind task).
type verifyIn struct {
	Response *string           `json:"response"`
	Answer   json.RawMessage   `json:"answer"`
	Program  *string           `json:"program"`
	Tests    json.RawMessage   `json:"tests"`
	Meta     map[string]string `json:"meta"`
}

type verifyOut struct {
	Correct   bool    `json:"correct"`
	Value     float64 `json:"value"`
	Extracted string  `json:"extracted"`
	Reason    string  `json:"reason"`
}

// runVerify keeps input and output lines aligned: a malformed or blank line gets a verdict with
// the error as reason, and the command then fails with exit code 2 naming the first bad line.
func runVerify(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", "", "verifier: "+strings.Join(reward.Kinds(), "|"))
	timeout := fs.Duration("timeout", 30*time.Second, "give up on one line after this long (verdict: timed out)")
	opts := verifyOpts{}
	fs.Var(opts, "opt", "verifier option key=value, repeatable (e.g. --opt correct=1 --opt incorrect=-1; code: timeout=6s, memory_mb=1024, score=fraction)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: polo verify --kind KIND [--opt key=value]... < lines.jsonl
  input lines:  {"response": "...", "answer": "..."}   (kind task: add "meta": {"task": "addition", ...})
                {"program": "...", "tests": [{"input": "...", "output": "..."}] or "assert f(1) == 2"}   (kind code)
  output lines: {"correct": true, "value": 1, "extracted": "...", "reason": "..."}`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *kind == "" || fs.NArg() > 0 {
		fs.Usage()
		return usagef("need --kind (one of %s) and no other arguments", strings.Join(reward.Kinds(), ", "))
	}
	if *timeout <= 0 {
		return usagef("--timeout must be a positive duration such as 30s, got %v", *timeout)
	}
	v, err := reward.NewVerifier(*kind, opts)
	if err != nil {
		return usageError{err}
	}
	safe := reward.Safe(v, *timeout)
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 1<<20), 1<<30)
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	var firstBad string
	bad := 0
	for line := 1; in.Scan(); line++ {
		b := bytes.TrimSpace(in.Bytes())
		var resp string
		var ex task.Example
		perr := errEmptyLine
		if len(b) > 0 {
			resp, ex, perr = parseVerifyLine(b, *kind)
		}
		var res verifyOut
		if perr != nil {
			bad++
			msg := fmt.Sprintf("stdin line %d: %v", line, perr)
			if firstBad == "" {
				firstBad = msg
			}
			res.Reason = msg
		} else {
			s := safe.Verify(resp, ex)
			res = verifyOut{Correct: s.Correct, Value: s.Value, Extracted: s.Extracted, Reason: s.Reason}
		}
		if err := enc.Encode(res); err != nil {
			return err
		}
	}
	if err := in.Err(); err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	if bad > 0 {
		return usagef("%d malformed input line(s); first: %s", bad, firstBad)
	}
	return nil
}

// errEmptyLine is the verdict of a blank input line: it still gets an output line, so output
// line n always answers input line n.
var errEmptyLine = errors.New("empty line; want a JSON object with response/answer (or program/tests)")

func parseVerifyLine(b []byte, kind string) (string, task.Example, error) {
	var in verifyIn
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return "", task.Example{}, fmt.Errorf("not a JSON object with response/answer (or program/tests): %v", err)
	}
	ex := task.Example{ID: "stdin", Meta: in.Meta}
	if kind == "code" {
		prog := ""
		switch {
		case in.Program != nil:
			prog = *in.Program
			if !strings.Contains(prog, "```") {
				prog = "```python\n" + prog + "\n```"
			}
		case in.Response != nil:
			prog = *in.Response
		default:
			return "", ex, fmt.Errorf(`code lines need "program" (or a "response" with a fenced block)`)
		}
		tests := in.Tests
		if len(tests) == 0 {
			tests = in.Answer
		}
		if len(tests) == 0 {
			return "", ex, fmt.Errorf(`code lines need "tests": a list of {"input","output"} or Python asserts`)
		}
		var s string
		switch first := bytes.TrimSpace(tests); {
		case json.Unmarshal(tests, &s) == nil:
			ex.Answer = s
		case len(first) > 0 && first[0] == '[':
			ex.Answer = string(tests)
		default: // an object, number, bool or null would reach the sandbox as Python source that checks nothing
			return "", ex, fmt.Errorf(`"tests" must be a list of {"input","output"} or a string of Python asserts, got %s`, clipBytes(tests))
		}
		return prog, ex, nil
	}
	if in.Response == nil {
		return "", ex, fmt.Errorf(`missing "response"`)
	}
	if kind != "format" {
		if len(in.Answer) == 0 {
			return "", ex, fmt.Errorf(`missing "answer"`)
		}
		var s string
		var n json.Number
		switch {
		case json.Unmarshal(in.Answer, &s) == nil:
			ex.Answer = s
		case json.Unmarshal(in.Answer, &n) == nil:
			ex.Answer = n.String()
		default:
			return "", ex, fmt.Errorf(`"answer" must be a string or a number, got %s`, clipBytes(in.Answer))
		}
	}
	return *in.Response, ex, nil
}

func clipBytes(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}
