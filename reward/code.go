package reward

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/polo-rl/polo/task"
)

// IOCase is one stdin/stdout test of a program.
type IOCase struct {
	Input  string `json:"input"`
	Output string `json:"output"`
}

// CodeVerifier runs the program in a response against unit tests in a Sandbox (spec A7.7).
//
// The program is the last fenced code block of the response (a fence tagged python is preferred);
// with Raw set the whole response is the program. The tests come from Example.Answer, either
//   - a JSON array of {"input": ..., "output": ...}: each case runs the program once with that
//     stdin and passes iff it exits 0 and its stdout equals the output after trimming trailing
//     whitespace on each line and blank lines at the end; or
//   - Python source (e.g. assert statements): appended to the program and run once; it passes
//     iff the run exits 0.
//
// The reward is 1 when every test passes (default) or the pass fraction (score=fraction).
// Timeouts, crashes and sandbox denials are failures, with the reason in Score.Reason.
type CodeVerifier struct {
	Sandbox  *Sandbox
	Raw      bool
	fraction bool
	rv       rewardValues
}

// NewCodeVerifier builds a code verifier with its own sandbox (which self-tests on creation).
func NewCodeVerifier(cfg SandboxConfig) (*CodeVerifier, error) {
	sb, err := NewSandbox(cfg)
	if err != nil {
		return nil, err
	}
	return &CodeVerifier{Sandbox: sb, rv: rewardValues{correct: 1}}, nil
}

var reFence = regexp.MustCompile("(?s)```([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)```")

// ExtractCode returns the last fenced block tagged python (or py), else the last fenced block.
func ExtractCode(response string) (string, bool) {
	ms := reFence.FindAllStringSubmatch(response, -1)
	if len(ms) == 0 {
		return "", false
	}
	for i := len(ms) - 1; i >= 0; i-- {
		if t := strings.ToLower(ms[i][1]); t == "python" || t == "py" || t == "python3" {
			return ms[i][2], true
		}
	}
	return ms[len(ms)-1][2], true
}

// Verify runs the tests. It never panics on bad input; a malformed test spec is a failed score.
func (c *CodeVerifier) Verify(response string, ex task.Example) Score {
	prog := response
	if !c.Raw {
		var ok bool
		if prog, ok = ExtractCode(response); !ok {
			return c.rv.score(false, "", ReasonNoAnswer+": no fenced code block")
		}
	}
	res := c.RunTests(context.Background(), prog, ex.Answer)
	s := c.rv.score(res.Passed == res.Total && res.Total > 0, prog, res.Reason)
	if c.fraction && res.Total > 0 {
		s.Value = c.rv.incorrect + (c.rv.correct-c.rv.incorrect)*float64(res.Passed)/float64(res.Total)
	}
	return s
}

// TestReport is the outcome of running a program against its tests.
type TestReport struct {
	Passed, Total int
	Reason        string // the first failure, e.g. "test 2: wall-clock limit 6s exceeded"
}

// RunTests runs program against tests (a JSON array of IOCase or Python assertion source).
func (c *CodeVerifier) RunTests(ctx context.Context, program, tests string) TestReport {
	trimmed := strings.TrimSpace(tests)
	if trimmed == "" {
		return TestReport{Reason: "example has no tests"}
	}
	if strings.HasPrefix(trimmed, "[") {
		cases, err := parseIOCases(trimmed)
		if err != nil {
			return TestReport{Reason: "tests: " + err.Error()}
		}
		rep := TestReport{Total: len(cases)}
		for i, tc := range cases {
			r, err := c.Sandbox.Run(ctx, program, tc.Input)
			why := ""
			switch {
			case err != nil:
				why = err.Error()
			case r.ExitCode != 0:
				why = r.Reason
			case normOutput(r.Stdout) != normOutput(tc.Output):
				why = fmt.Sprintf("wrong output %q, want %q", clip(normOutput(r.Stdout), 60), clip(normOutput(tc.Output), 60))
			}
			if why == "" {
				rep.Passed++
			} else if rep.Reason == "" {
				rep.Reason = fmt.Sprintf("test %d: %s", i+1, why)
			}
		}
		return rep
	}
	if err := checkAssertSource(trimmed); err != nil {
		return TestReport{Reason: "tests: " + err.Error()}
	}
	r, err := c.Sandbox.Run(ctx, program+"\n\n"+tests+"\n", "")
	switch {
	case err != nil:
		return TestReport{Total: 1, Reason: err.Error()}
	case r.ExitCode != 0:
		return TestReport{Total: 1, Reason: r.Reason}
	}
	return TestReport{Passed: 1, Total: 1}
}

// normOutput trims trailing whitespace on each line and blank lines at the end.
func normOutput(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " \t")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}
