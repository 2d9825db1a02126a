package reward

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/polo-rl/polo/task"
)

// The sandbox needs bubblewrap and python3 (installed by .ci/run). These tests fail, never skip,
// when they are missing, so a CI machine without them cannot pass silently.

var (
	sbOnce sync.Once
	sbVer  *CodeVerifier
	sbErr  error
)

func testSandbox(t *testing.T) *CodeVerifier {
	t.Helper()
	sbOnce.Do(func() {
		cfg := DefaultSandboxConfig()
		cfg.WallTime, cfg.CPUTime, cfg.MemoryMB = 3*time.Second, 2*time.Second, 256
		sbVer, sbErr = NewCodeVerifier(cfg)
	})
	if sbErr != nil {
		t.Fatalf("code sandbox unavailable (install bubblewrap and python3): %v", sbErr)
	}
	return sbVer
}

func TestCodeVerifierTests(t *testing.T) {
	cv := testSandbox(t)
	ioTests := `[{"input":"2 3\n","output":"5\n"},{"input":"10 -4\n","output":"6"},{"input":"0 0\n","output":"0\n\n"}]`
	asserts := "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"
	fence := func(s string) string { return "Here:\n```python\n" + s + "\n```\nDone." }
	tests := []struct {
		name     string
		response string
		tests    string
		correct  bool
		value    float64 // with score=fraction
		reason   string
	}{
		{"stdio ok", fence("a, b = map(int, input().split())\nprint(a + b)"), ioTests, true, 1, ""},
		{"stdio trailing spaces ok", fence("a, b = map(int, input().split())\nprint(a + b, '  ')"), ioTests, true, 1, ""},
		{"stdio wrong on one", fence("a, b = map(int, input().split())\nprint(a + b if a else 1)"), ioTests, false, 2.0 / 3, `test 3: wrong output "1", want "0"`},
		{"stdio crash", fence("print(1/0)"), ioTests, false, 0, "test 1: exit status 1: ZeroDivisionError: division by zero"},
		{"asserts ok", fence("def add(a, b):\n    return a + b"), asserts, true, 1, ""},
		{"asserts fail", fence("def add(a, b):\n    return a - b"), asserts, false, 0, "exit status 1: AssertionError"},
		{"syntax error", fence("def add(a, b) return a"), asserts, false, 0, "SyntaxError"},
		{"last python fence wins", "```python\nprint(0)\n```\n```text\nnot code\n```\n```python\nimport sys\nprint(sum(map(int, sys.stdin.read().split())))\n```", ioTests, true, 1, ""},
		{"no fence", "print(5)", ioTests, false, 0, "no answer: no fenced code block"},
		{"bad tests json", fence("print(1)"), `[{"input": 1}]`, false, 0, "tests: not a JSON array"},
	}
	frac := &CodeVerifier{Sandbox: cv.Sandbox, fraction: true, rv: rewardValues{correct: 1}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := task.Example{Answer: tt.tests}
			s := cv.Verify(tt.response, ex)
			if s.Correct != tt.correct || !strings.Contains(s.Reason, tt.reason) {
				t.Fatalf("got %+v, want correct=%v reason~%q", s, tt.correct, tt.reason)
			}
			if f := frac.Verify(tt.response, ex); abs(f.Value-tt.value) > 1e-12 {
				t.Fatalf("fraction score %v, want %v", f.Value, tt.value)
			}
		})
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestSandboxHostile runs programs that attack the host. Each must fail the test with a reason
// naming the limit, and the host must be unharmed.
func TestSandboxHostile(t *testing.T) {
	cv := testSandbox(t)
	// A server on the host's loopback that the sandbox must not reach.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var reached sync.WaitGroup
	hit := make(chan struct{}, 1)
	reached.Add(1)
	go func() {
		defer reached.Done()
		c, err := ln.Accept()
		if err == nil {
			hit <- struct{}{}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	outside := filepath.Join(os.TempDir(), fmt.Sprintf("polo-sandbox-escape-%d", os.Getpid()))
	os.Remove(outside)
	home, _ := os.UserHomeDir()

	// The CPU-time limit gets a verifier with a long wall-clock limit: on a loaded machine a busy
	// loop may get less than 2 s of CPU in 3 s of wall time, and the wall limit would fire first.
	cpuCfg := DefaultSandboxConfig()
	cpuCfg.WallTime, cpuCfg.CPUTime, cpuCfg.MemoryMB = 120*time.Second, 2*time.Second, 256
	cpuOnly, err := NewCodeVerifier(cpuCfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, program, reason string
		cv                    *CodeVerifier
	}{
		{"infinite loop", "while True:\n    pass", "CPU-time limit 2s exceeded", cpuOnly},
		{"sleep forever", "import time\ntime.sleep(100)", "wall-clock limit 3s exceeded", cv},
		{"fork bomb", "import os\nwhile True:\n    os.fork()", "process limit reached", cv},
		{"fork bomb ignoring errors", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", "limit", cv},
		{"memory bomb", "x = []\nwhile True:\n    x.append(bytearray(10**7))", "memory limit 256 MiB exceeded", cv},
		{"read /etc/passwd", "print(open('/etc/passwd').read())", "No such file or directory: '/etc/passwd'", cv},
		{"read home", fmt.Sprintf("import os\nprint(os.listdir(%q))", home), "No such file or directory", cv},
		{"connect to host loopback", fmt.Sprintf("import socket\nsocket.create_connection(('127.0.0.1', %d), timeout=1)", port), "Connection refused", cv},
		{"connect to internet", "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)", "Network is unreachable", cv},
		{"write outside scratch", fmt.Sprintf("open(%q, 'w').write('x')", outside), "No such file or directory", cv},
		{"write to /usr", "open('/usr/pwned', 'w').write('x')", "Read-only file system", cv},
		{"huge file", "open('big', 'wb').write(b'0' * (64 << 20))", "file size limit 16 MiB exceeded", cv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			rep := tt.cv.RunTests(context.Background(), tt.program, "assert True\nprint('tests ran')")
			if rep.Passed != 0 || rep.Total != 1 || !strings.Contains(rep.Reason, tt.reason) {
				t.Fatalf("report %+v, want a failure with reason ~%q", rep, tt.reason)
			}
			t.Logf("%s: %s (%v)", tt.name, rep.Reason, time.Since(start).Round(time.Millisecond))
		})
	}
	select {
	case <-hit:
		t.Fatal("a sandboxed program reached a host loopback server")
	default:
	}
	if _, err := os.Stat(outside); err == nil {
		os.Remove(outside)
		t.Fatal("a sandboxed program wrote outside its scratch dir")
	}
	if _, err := os.Stat("/usr/pwned"); err == nil {
		t.Fatal("a sandboxed program wrote to /usr")
	}
	// No sandbox process may outlive its run (the fork bomb's children included).
	time.Sleep(200 * time.Millisecond)
	if n := countProcs(nobody); cv.Sandbox.dropUID && n != 0 {
		t.Fatalf("%d processes of uid nobody still running after the runs", n)
	}
	// Leftover scratch dirs would mean a run was not cleaned up.
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), "polo-sandbox-*"))
	if len(left) != 0 {
		t.Fatalf("scratch dirs left behind: %v", left)
	}
}

func TestSandboxMissingTools(t *testing.T) {
	cfg := DefaultSandboxConfig()
	cfg.Bwrap = "/nonexistent/bwrap"
	if _, err := NewSandbox(cfg); err == nil || !strings.Contains(err.Error(), "apt-get install bubblewrap") {
		t.Fatalf("missing bwrap: %v", err)
	}
	cfg = DefaultSandboxConfig()
	cfg.Python = "/usr/bin/python-missing"
	if _, err := NewSandbox(cfg); err == nil || !strings.Contains(err.Error(), "apt-get install python3") {
		t.Fatalf("missing python: %v", err)
	}
	cfg.Python = "/opt/py/bin/python3"
	if _, err := NewSandbox(cfg); err == nil || !strings.Contains(err.Error(), "under /usr") {
		t.Fatalf("python outside /usr: %v", err)
	}
}
