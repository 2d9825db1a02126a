package reward

import (
	"fmt"
	"regexp"

	"github.com/polo-rl/polo/task"
)

// DefaultFormatPattern is the common R1-style layout: a think block, then an answer block
// (spec A7.6; the exact regex differs between projects, so it is an option).
const DefaultFormatPattern = `(?s)^<think>\n.*?\n</think>\n<answer>\n(.*?)\n</answer>$`

// Format rewards a response whose layout matches a regular expression. The first capture group,
// when the pattern has one, is reported as the extracted answer. It checks layout only; combine
// it with a correctness verifier as a separate reward component.
type Format struct {
	re *regexp.Regexp
	rv rewardValues
}

// NewFormat compiles a format pattern (Go RE2 syntax).
func NewFormat(pattern string) (*Format, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("verifier format: pattern %q: %v", pattern, err)
	}
	return &Format{re: re, rv: rewardValues{correct: 1}}, nil
}

// Verify returns 1 when the response matches (the reference answer is not used).
func (f *Format) Verify(response string, _ task.Example) Score {
	m := f.re.FindStringSubmatch(response)
	if m == nil {
		return f.rv.score(false, "", "layout does not match "+clip(f.re.String(), 60))
	}
	ext := ""
	if len(m) > 1 {
		ext = m[1]
	}
	return f.rv.score(true, ext, "")
}
