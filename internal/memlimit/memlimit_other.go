//go:build !linux

package memlimit

import (
	"runtime"
	"testing"
)

// InChild is always false where memory-limited children are not supported.
func InChild() bool { return false }

// Report is never reached where InChild is false.
func Report(error) {}

// Result is what the child did.
type Result struct {
	Exit        int
	Err, Output string
}

// Run skips the test, naming why: limits need Linux (RLIMIT_AS, /proc).
func Run(t *testing.T, name string, extraMB int, env ...string) Result {
	t.Skipf("memory-limited child processes need Linux (RLIMIT_AS, /proc); GOOS=%s", runtime.GOOS)
	return Result{}
}

// Expect is never reached (Run skipped).
func (r Result) Expect(t *testing.T, want string) {}
