package reward

import (
	"strings"
	"testing"

	"github.com/polo-rl/polo/task"
)

// TestCodeVerifierRejectsEmptyOrWrongTests: a test specification that checks nothing is an error
// verdict, never a pass (issue 14, item 9). The program below passes any such "test".
func TestCodeVerifierRejectsEmptyOrWrongTests(t *testing.T) {
	cv := testSandbox(t)
	prog := "```python\nprint(1)\n```"
	for _, tt := range []struct{ tests, reason string }{
		{`{}`, "no assert statement"},
		{`5`, "no assert statement"},
		{`true`, "no assert statement"},
		{`pass`, "no assert statement"},
		{`# assertion-free`, "no assert statement"},
		{`[]`, "empty list"},
		{`[{}]`, `case 1 has no "output"`},
		{`[{"input": "1\n"}]`, `case 1 has no "output"`},
		{`[5]`, "case 1 is 5"},
		{`[{"input": "", "output": "1", "extra": 1}]`, `unknown field "extra"`},
	} {
		s := cv.Verify(prog, task.Example{Answer: tt.tests})
		if s.Correct || s.Value != 0 || !strings.Contains(s.Reason, tt.reason) {
			t.Errorf("tests %s: got %+v, want an error verdict with reason ~%q", tt.tests, s, tt.reason)
		}
	}
	// Well-formed specifications still pass.
	for _, tests := range []string{`[{"output": "1"}]`, "assert 1 + 1 == 2", "def check():\n    assert True\ncheck()"} {
		if s := cv.Verify(prog, task.Example{Answer: tests}); !s.Correct {
			t.Errorf("tests %q: got %+v, want a pass", tests, s)
		}
	}
}
