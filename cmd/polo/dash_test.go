package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// Mistakes on the command line are one line and exit 2, before anything listens.
func TestDashCLIErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"dash", filepath.Join(dir, "absent")}, "absent"},
		{[]string{"dash", dir}, "no run folder"},
		{[]string{"dash", dir, "--port", "70000"}, "--port 70000"},
		{[]string{"dash", "--nope"}, "flag provided but not defined: -nope"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(c.args, nil, &out, &errb)
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if code != 2 || !strings.Contains(lines[len(lines)-1], c.want) || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, out.String(), errb.String(), c.want)
		}
	}
}
