package reward

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// SandboxConfig sets the limits of one sandboxed Python run. Defaults (DefaultSandboxConfig)
// follow spec A7.7: 6 s per test, 1 GiB.
type SandboxConfig struct {
	Python     string        // interpreter; must live under /usr (bound read-only). Default /usr/bin/python3
	Bwrap      string        // bubblewrap binary; default "bwrap" from PATH
	WallTime   time.Duration // wall-clock limit per run
	CPUTime    time.Duration // CPU-time limit per run (RLIMIT_CPU, whole seconds, rounded up)
	MemoryMB   int           // address-space limit per process (RLIMIT_AS)
	FileSizeMB int           // largest file the program may write (RLIMIT_FSIZE)
	MaxProcs   int           // processes the program may add (RLIMIT_NPROC headroom)
	MaxOutput  int           // bytes of stdout and of stderr kept
	ScratchDir string        // where per-run scratch directories are made; default os.TempDir()
}

// DefaultSandboxConfig returns the documented defaults.
func DefaultSandboxConfig() SandboxConfig {
	return SandboxConfig{
		Python: "/usr/bin/python3", Bwrap: "bwrap",
		WallTime: 6 * time.Second, CPUTime: 6 * time.Second,
		MemoryMB: 1024, FileSizeMB: 16, MaxProcs: 16, MaxOutput: 1 << 20,
	}
}

// Sandbox runs untrusted Python programs with bubblewrap (bwrap). What is enforced:
//   - no network: a fresh network namespace with only a down loopback;
//   - filesystem: only /usr (read-only) and a fresh scratch directory (read-write, the working
//     directory, deleted afterwards) are visible; no /etc, /home, /root, /tmp of the host;
//   - separate PID, IPC, UTS and user namespaces; no new user namespaces inside; all
//     processes die when the run ends (PID namespace + die-with-parent);
//   - limits set by a trusted launcher before the program starts: RLIMIT_AS (memory),
//     RLIMIT_CPU, RLIMIT_NPROC (fork bombs), RLIMIT_FSIZE, RLIMIT_NOFILE, no core dumps;
//   - a wall-clock limit enforced from Go (the whole sandbox is killed).
//
// When polo runs as root the sandbox runs as user nobody (65534) so that RLIMIT_NPROC applies
// (the kernel does not enforce it for root). As another user, RLIMIT_NPROC counts all of that
// user's processes, so the limit is set to the current count plus MaxProcs.
// Not enforced: disk usage of the scratch directory beyond RLIMIT_FSIZE per file, and
// CPU share (use fewer parallel runs on a busy machine).
type Sandbox struct {
	cfg     SandboxConfig
	bwrap   string
	python  string
	dropUID bool
}

// nobody is the uid/gid the sandbox runs as when polo is root.
const nobody = 65534

// NewSandbox checks that bwrap and python3 exist and that a trivial program runs, so a broken
// setup fails loudly here rather than scoring every program as wrong.
func NewSandbox(cfg SandboxConfig) (*Sandbox, error) {
	def := DefaultSandboxConfig()
	if cfg.Python == "" {
		cfg.Python = def.Python
	}
	if cfg.Bwrap == "" {
		cfg.Bwrap = def.Bwrap
	}
	if cfg.WallTime <= 0 {
		cfg.WallTime = def.WallTime
	}
	if cfg.CPUTime <= 0 {
		cfg.CPUTime = cfg.WallTime
	}
	if cfg.MemoryMB <= 0 {
		cfg.MemoryMB = def.MemoryMB
	}
	if cfg.MemoryMB < minSandboxMemoryMB {
		return nil, fmt.Errorf("code sandbox: memory_mb=%d is too little for Python to start; use at least %d", cfg.MemoryMB, minSandboxMemoryMB)
	}
	if cfg.FileSizeMB <= 0 {
		cfg.FileSizeMB = def.FileSizeMB
	}
	if cfg.MaxProcs <= 0 {
		cfg.MaxProcs = def.MaxProcs
	}
	if cfg.MaxOutput <= 0 {
		cfg.MaxOutput = def.MaxOutput
	}
	bw, err := exec.LookPath(cfg.Bwrap)
	if err != nil {
		return nil, fmt.Errorf("code sandbox: bubblewrap (%s) not found; install it (Debian: apt-get install bubblewrap)", cfg.Bwrap)
	}
	if !strings.HasPrefix(cfg.Python, "/usr/") {
		return nil, fmt.Errorf("code sandbox: python %q must be an absolute path under /usr (only /usr is visible in the sandbox); install python3 (Debian: apt-get install python3)", cfg.Python)
	}
	if _, err := os.Stat(cfg.Python); err != nil {
		return nil, fmt.Errorf("code sandbox: python %s not found; install it (Debian: apt-get install python3)", cfg.Python)
	}
	s := &Sandbox{cfg: cfg, bwrap: bw, python: cfg.Python, dropUID: os.Geteuid() == 0}
	res, err := s.Run(context.Background(), "print(6*7)", "")
	if err != nil {
		return nil, fmt.Errorf("code sandbox self-test: %w", err)
	}
	if res.ExitCode != 0 || strings.TrimSpace(res.Stdout) != "42" {
		return nil, fmt.Errorf("code sandbox self-test failed (exit %d, %s): python could not run in the sandbox (bwrap without user namespaces here, or limits too tight); stderr: %s",
			res.ExitCode, res.Reason, clip(strings.TrimSpace(res.Stderr), 300))
	}
	return s, nil
}

// minSandboxMemoryMB is the smallest address-space limit accepted: Python 3 needs ~16 MiB of address
// space just to map its libraries and start (measured on Debian 12).
const minSandboxMemoryMB = 32

// Config returns the sandbox's effective limits.
func (s *Sandbox) Config() SandboxConfig { return s.cfg }

// RunResult is the outcome of one sandboxed run.
type RunResult struct {
	ExitCode int // -1 when killed from outside
	Stdout   string
	Stderr   string
	TimedOut bool
	// Reason is empty for exit 0, else a short cause: "wall-clock limit 6s exceeded",
	// "CPU-time limit exceeded", "memory limit exceeded", "exit status 1: <last stderr line>", ...
	Reason string
	Wall   time.Duration
}

// launcher is trusted Python that sets the limits, then replaces itself with the program.
// The program runs as PID 1 of its namespace (--as-pid-1: bwrap's own reaper would be orphaned
// and left as a zombie of the host's init when bwrap exits first). PID 1 ignores SIGXCPU, so the
// CPU limit uses soft = hard: the kernel sends SIGKILL at the limit. When PID 1 exits the kernel
// kills every other process in the namespace.
const launcher = `import os, resource, sys
a = [int(x) for x in sys.argv[1:7]]
for lim, v in ((resource.RLIMIT_AS, a[0]), (resource.RLIMIT_FSIZE, a[2]), (resource.RLIMIT_NPROC, a[3]),
               (resource.RLIMIT_NOFILE, a[4]), (resource.RLIMIT_CORE, 0)):
    resource.setrlimit(lim, (v, v))
resource.setrlimit(resource.RLIMIT_CPU, (a[1], a[1]))
os.execv(sys.executable, [sys.executable, "-I", "-B", "main.py"])
`

// Run executes program (Python source) with stdin in a fresh sandbox. The error is non-nil only
// when the sandbox itself could not be set up; a failing program is reported in RunResult.
func (s *Sandbox) Run(ctx context.Context, program, stdin string) (RunResult, error) {
	parent := s.cfg.ScratchDir
	if parent == "" {
		parent = os.TempDir()
	}
	scratch, err := os.MkdirTemp(parent, "polo-sandbox-")
	if err != nil {
		return RunResult{}, fmt.Errorf("sandbox scratch dir: %w", err)
	}
	defer os.RemoveAll(scratch)
	if err := os.WriteFile(filepath.Join(scratch, "main.py"), []byte(program), 0o644); err != nil {
		return RunResult{}, fmt.Errorf("sandbox: write program: %w", err)
	}
	if s.dropUID {
		if err := os.Chown(scratch, nobody, nobody); err != nil {
			return RunResult{}, fmt.Errorf("sandbox: chown scratch dir: %w", err)
		}
	}
	nproc := s.cfg.MaxProcs
	if !s.dropUID {
		nproc += countProcs(os.Getuid())
	}
	cpu := int((s.cfg.CPUTime + time.Second - 1) / time.Second)
	args := []string{
		"--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session", "--as-pid-1",
		"--json-status-fd", "3",
		"--ro-bind", "/usr", "/usr",
	}
	for _, d := range []string{"/bin", "/lib", "/lib64", "/sbin", "/lib32"} {
		if target, err := os.Readlink(d); err == nil {
			args = append(args, "--symlink", target, d)
		} else if st, err := os.Stat(d); err == nil && st.IsDir() {
			args = append(args, "--ro-bind", d, d)
		}
	}
	args = append(args,
		"--proc", "/proc", "--dev", "/dev",
		"--bind", scratch, "/sandbox", "--chdir", "/sandbox",
		"--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/sandbox",
		"--setenv", "TMPDIR", "/sandbox", "--setenv", "LANG", "C.UTF-8",
		"--", s.python, "-I", "-S", "-c", launcher,
		strconv.Itoa(s.cfg.MemoryMB<<20), strconv.Itoa(cpu), strconv.Itoa(s.cfg.FileSizeMB<<20),
		strconv.Itoa(nproc), "64", "0",
	)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WallTime)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bwrap, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.dropUID {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: nobody, Gid: nobody}
	}
	// bwrap reports the sandboxed process's host pid on fd 3. On timeout that process is killed
	// first, so bwrap reaps it and exits normally; killing bwrap first would orphan it.
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return RunResult{}, fmt.Errorf("sandbox: status pipe: %w", err)
	}
	defer statusR.Close()
	cmd.ExtraFiles = []*os.File{statusW}
	var childPid atomic.Int64
	go func() {
		dec := json.NewDecoder(statusR)
		for {
			var st struct {
				ChildPid int64 `json:"child-pid"`
			}
			if dec.Decode(&st) != nil {
				return
			}
			if st.ChildPid > 0 {
				childPid.Store(st.ChildPid)
			}
		}
	}()
	cmd.Cancel = func() error {
		if pid := childPid.Load(); pid > 0 {
			return syscall.Kill(int(pid), syscall.SIGKILL)
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = time.Second
	cmd.Stdin = strings.NewReader(stdin)
	stdout := &capped{max: s.cfg.MaxOutput}
	stderr := &capped{max: s.cfg.MaxOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	start := time.Now()
	err = cmd.Start()
	statusW.Close()
	if err == nil {
		err = cmd.Wait()
	}
	res := RunResult{Stdout: stdout.String(), Stderr: stderr.String(), Wall: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		res.ExitCode, res.TimedOut = -1, true
		res.Reason = fmt.Sprintf("wall-clock limit %v exceeded", s.cfg.WallTime)
		return res, nil
	case err == nil:
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode()
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.ExitCode = 128 + int(ws.Signal())
		}
	default:
		return res, fmt.Errorf("sandbox: run bwrap: %w", err)
	}
	res.Reason = explainExit(res, s.cfg)
	return res, nil
}

// explainExit turns an exit status and stderr into a short reason.
func explainExit(r RunResult, cfg SandboxConfig) string {
	if r.ExitCode == 0 {
		return ""
	}
	last := lastLine(r.Stderr)
	switch {
	case r.ExitCode == 128+int(syscall.SIGXCPU) || r.ExitCode == 128+int(syscall.SIGKILL) && strings.TrimSpace(r.Stderr) == "":
		return fmt.Sprintf("CPU-time limit %v exceeded", cfg.CPUTime)
	case strings.Contains(r.Stderr, "MemoryError") || strings.Contains(r.Stderr, "Cannot allocate memory"):
		return fmt.Sprintf("memory limit %d MiB exceeded: %s", cfg.MemoryMB, last)
	case strings.Contains(r.Stderr, "BlockingIOError") && strings.Contains(r.Stderr, "Resource temporarily unavailable"):
		return fmt.Sprintf("process limit reached: %s", last)
	case r.ExitCode == 128+int(syscall.SIGXFSZ) || strings.Contains(r.Stderr, "File too large"):
		return fmt.Sprintf("file size limit %d MiB exceeded", cfg.FileSizeMB)
	case r.ExitCode > 128:
		return fmt.Sprintf("killed by signal %d: %s", r.ExitCode-128, last)
	}
	return fmt.Sprintf("exit status %d: %s", r.ExitCode, last)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return clip(strings.TrimSpace(lines[len(lines)-1]), 200)
}

// countProcs counts the tasks (threads included, as the kernel does for RLIMIT_NPROC) whose real
// uid is uid.
func countProcs(uid int) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	want := []byte("Uid:\t" + strconv.Itoa(uid) + "\t")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil || !bytes.Contains(b, want) {
			continue
		}
		threads := 1
		if i := bytes.Index(b, []byte("Threads:\t")); i >= 0 {
			line, _, _ := bytes.Cut(b[i+len("Threads:\t"):], []byte("\n"))
			if t, err := strconv.Atoi(string(line)); err == nil {
				threads = t
			}
		}
		n += threads
	}
	return n
}

// capped keeps the first max bytes written and discards the rest.
type capped struct {
	buf bytes.Buffer
	max int
	cut bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		if len(p) > room {
			c.buf.Write(p[:room])
			c.cut = true
		} else {
			c.buf.Write(p)
		}
	} else if len(p) > 0 {
		c.cut = true
	}
	return len(p), nil
}

func (c *capped) String() string {
	if c.cut {
		return c.buf.String() + "\n[output truncated]"
	}
	return c.buf.String()
}
