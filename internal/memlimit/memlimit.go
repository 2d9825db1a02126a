//go:build linux

// Package memlimit runs a test's hostile input in a child process under an address-space limit, so
// that tests can assert "a clean error, not an out-of-memory crash" without timing anything and
// without risking the machine.
//
// Usage, inside a test function TestX:
//
//	if memlimit.InChild() {
//		err := doTheHostileThing()
//		memlimit.Report(err) // prints the error for the parent and exits
//	}
//	out := memlimit.Run(t, "TestX", 512) // re-runs TestX in a child limited to 512 MiB more than it started with
//	// assert on out.Err (the error text the child reported) and out.Exit
package memlimit

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const envVar = "POLO_MEMLIMIT_CHILD_MB"

// InChild reports whether this process is the limited child; it applies the limit on first call.
func InChild() bool {
	mb := os.Getenv(envVar)
	if mb == "" {
		return false
	}
	n, err := strconv.ParseUint(mb, 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "memlimit: bad %s=%q\n", envVar, mb)
		os.Exit(3)
	}
	apply(n << 20)
	return true
}

var applied bool

// apply limits the address space to what the process maps now plus extra bytes, and sets the Go
// soft memory limit to extra so the collector works hard before the hard limit is reached.
func apply(extra uint64) {
	if applied {
		return
	}
	applied = true
	base := vmSize()
	lim := syscall.Rlimit{Cur: base + extra, Max: base + extra}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &lim); err != nil {
		fmt.Fprintf(os.Stderr, "memlimit: setrlimit: %v\n", err)
		os.Exit(3)
	}
	debug.SetMemoryLimit(int64(extra))
}

// vmSize is the process's current virtual size in bytes (/proc/self/status VmSize).
func vmSize() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmSize:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

const marker = "MEMLIMIT-RESULT: "

// Report prints err (or "ok") for the parent and ends the child with exit status 0: reaching it
// means the code under test returned instead of crashing.
func Report(err error) {
	msg := "ok"
	if err != nil {
		msg = strings.ReplaceAll(err.Error(), "\n", " ")
	}
	fmt.Fprintln(os.Stdout, marker+msg)
	os.Exit(0)
}

// Result is what the child did.
type Result struct {
	Exit   int    // 0 when the child reached Report
	Err    string // the reported error text ("ok" for none); "" when the child never reported
	Output string // the child's whole output (for failure messages)
}

// Run re-runs the test function name in a child process limited to extraMB MiB of address space
// beyond its size at start (with env added to its environment), and returns what the child reported. It fails t on platforms without
// /proc and RLIMIT_AS rather than skip silently.
func Run(t *testing.T, name string, extraMB int, env ...string) Result {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("memory-limited child processes need Linux (RLIMIT_AS, /proc); GOOS=%s", runtime.GOOS)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), envVar+"="+strconv.Itoa(extraMB), "GOTRACEBACK=single"), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	res := Result{Output: out.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.Exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("memlimit child: %v", err)
	}
	for _, line := range strings.Split(res.Output, "\n") {
		if rest, ok := strings.CutPrefix(line, marker); ok {
			res.Err = rest
		}
	}
	return res
}

// Expect fails t unless the child reported an error containing want (and exited 0: no crash).
func (r Result) Expect(t *testing.T, want string) {
	t.Helper()
	if r.Exit != 0 || r.Err == "" || !strings.Contains(r.Err, want) {
		out := r.Output
		if len(out) > 2000 {
			out = out[:2000] + "…"
		}
		t.Fatalf("under a memory limit: exit %d, reported %q; want a clean error containing %q\nchild output:\n%s", r.Exit, r.Err, want, out)
	}
}
