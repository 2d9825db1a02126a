package reward

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// Test specifications of the code verifier are checked before anything runs: a specification that
// checks nothing (an empty list, a case without an expected output, Python source without a single
// assert, a JSON object or number where tests belong) is an error verdict, never a pass.

// parseIOCases reads a JSON array of {"input", "output"} objects. Every element must be an object
// with a string "output" ("input" may be absent: empty stdin); unknown keys are an error.
func parseIOCases(src string) ([]IOCase, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(src), &raw); err != nil {
		return nil, fmt.Errorf("not a JSON array of {input, output}: %v", err)
	}
	if len(raw) == 0 {
		return nil, errors.New("empty list: there is nothing to check")
	}
	cases := make([]IOCase, len(raw))
	for i, r := range raw {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(r, &fields); err != nil || fields == nil {
			return nil, fmt.Errorf("not a JSON array of {input, output}: case %d is %s", i+1, clipJSON(r))
		}
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cases[i]); err != nil {
			return nil, fmt.Errorf("not a JSON array of {input, output}: case %d: %v", i+1, err)
		}
		if _, ok := fields["output"]; !ok {
			return nil, fmt.Errorf("case %d has no \"output\" to compare with", i+1)
		}
	}
	return cases, nil
}

var assertWord = regexp.MustCompile(`(^|[^A-Za-z0-9_])assert([^A-Za-z0-9_]|$)`)

// checkAssertSource accepts Python test source only if it holds at least one assert statement:
// source without one (for example "{}" or "5", what a JSON object or number in "tests" becomes)
// would pass every program.
func checkAssertSource(src string) error {
	if !assertWord.MatchString(src) {
		return fmt.Errorf("Python test source %s has no assert statement, so it would pass any program; give asserts or a list of {input, output}", clipJSON([]byte(src)))
	}
	return nil
}

func clipJSON(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}
