package env

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/polo-rl/polo/task"
)

// ProcessConfig starts one external environment process per trajectory; it speaks the JSON-lines
// protocol of docs/agents.md on its stdin and stdout (stderr is kept for error messages). One
// process per trajectory isolates faults: a crash or a hang ends only its own trajectory.
type ProcessConfig struct {
	Command []string // program and arguments, e.g. ["python3", "env.py"]
	Dir     string   // working directory ("" = the current one)
	// MaxLine bounds one reply line in bytes; 0 means 16 MiB.
	MaxLine int
	// CloseGrace is how long a process may take to exit after its stdin is closed before it is
	// killed; 0 means 2 s.
	CloseGrace time.Duration
}

// Factory returns a Factory that starts a process for every trajectory.
func (c ProcessConfig) Factory() Factory {
	return func(int) (Environment, error) { return StartProcess(c) }
}

// Process is an environment living in an external process.
type Process struct {
	cfg     ProcessConfig
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan reply
	stderr  *tailBuffer
	dead    error // set once the process is known to be unusable
	waitMu  sync.Mutex
	waited  bool
	waitErr error
	exited  chan struct{}
}

type reply struct {
	line []byte
	err  error
}

// StartProcess starts the environment process.
func StartProcess(cfg ProcessConfig) (*Process, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("environment process: no command")
	}
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = 16 << 20
	}
	if cfg.CloseGrace <= 0 {
		cfg.CloseGrace = 2 * time.Second
	}
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...)
	cmd.Dir = cfg.Dir
	cmd.WaitDelay = time.Second // children that keep stderr open must not hold up Wait
	p := &Process{cfg: cfg, cmd: cmd, replies: make(chan reply, 1), stderr: &tailBuffer{max: 4096}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("environment process: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("environment process: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("environment process %s: %w", cfg.Command[0], err)
	}
	go p.read(stdout)
	return p, nil
}

// read forwards reply lines; it ends at EOF, when the process has exited.
func (p *Process) read(stdout io.Reader) {
	br := bufio.NewReaderSize(stdout, 64<<10)
	for {
		line, err := readLine(br, p.cfg.MaxLine)
		if err != nil {
			if err == io.EOF {
				err = p.exitError()
			}
			p.replies <- reply{err: err}
			close(p.replies)
			return
		}
		p.replies <- reply{line: line}
	}
}

func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > limit {
			return nil, fmt.Errorf("environment process wrote a line longer than %d bytes", limit)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(out) > 0 {
				return out, nil
			}
			return nil, err
		}
		return out, nil
	}
}

// exitError waits for the process and describes how it ended.
func (p *Process) exitError() error {
	err := p.wait()
	msg := "environment process exited"
	if err != nil {
		msg += " (" + err.Error() + ")"
	}
	if last := p.stderr.lastLine(); last != "" {
		msg += ": " + last
	}
	return errors.New(msg)
}

func (p *Process) wait() error {
	p.waitMu.Lock()
	defer p.waitMu.Unlock()
	if !p.waited {
		p.waitErr = p.cmd.Wait()
		p.waited = true
		close(p.exited)
	}
	return p.waitErr
}

// request sends one message and waits for its reply until ctx ends; a process that does not answer
// in time is killed.
func (p *Process) request(ctx context.Context, msg any, out any) error {
	if p.dead != nil {
		return p.dead
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("environment request: %w", err)
	}
	b = append(b, '\n')
	wrote := make(chan error, 1)
	go func() { _, err := p.stdin.Write(b); wrote <- err }() // a process that stops reading must not block us
	select {
	case err := <-wrote:
		if err != nil {
			p.dead = p.replyError(ctx, fmt.Errorf("environment process: write: %w", err))
			return p.dead
		}
	case <-ctx.Done():
		p.kill()
		p.dead = fmt.Errorf("environment process: not reading its input (%w); killed", ctx.Err())
		return p.dead
	}
	select {
	case r, ok := <-p.replies:
		if !ok {
			p.dead = errors.New("environment process: no more replies")
			return p.dead
		}
		if r.err != nil {
			p.dead = r.err
			return p.dead
		}
		var e struct {
			Error *string `json:"error"`
		}
		if err := json.Unmarshal(r.line, &e); err != nil {
			p.dead = fmt.Errorf("environment process: malformed reply %q: %v", clipText(strings.TrimSpace(string(r.line)), 200), err)
			p.kill()
			return p.dead
		}
		if e.Error != nil {
			return fmt.Errorf("environment: %s", *e.Error)
		}
		if err := json.Unmarshal(r.line, out); err != nil {
			p.dead = fmt.Errorf("environment process: reply %q: %v", clipText(strings.TrimSpace(string(r.line)), 200), err)
			p.kill()
			return p.dead
		}
		return nil
	case <-ctx.Done():
		p.kill()
		p.dead = fmt.Errorf("environment process: no reply (%w); killed", ctx.Err())
		return p.dead
	}
}

// replyError prefers the reader's account (the process exited, with its stderr) to a write error.
func (p *Process) replyError(ctx context.Context, fallback error) error {
	select {
	case r, ok := <-p.replies:
		if ok && r.err != nil {
			return r.err
		}
	case <-time.After(time.Second):
	case <-ctx.Done():
	}
	return fallback
}

func (p *Process) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
}

// Reset sends {"type":"reset","example":...}.
func (p *Process) Reset(ctx context.Context, ex task.Example) (Start, error) {
	var r struct {
		Messages []Message         `json:"messages"`
		Tools    []json.RawMessage `json:"tools"`
	}
	if err := p.request(ctx, map[string]any{"type": "reset", "example": ex}, &r); err != nil {
		return Start{}, err
	}
	if len(r.Messages) == 0 {
		return Start{}, errors.New(`environment reset: reply has no "messages"`)
	}
	return Start{Messages: r.Messages, Tools: r.Tools}, nil
}

// Step sends {"type":"step","turn":{...}}.
func (p *Process) Step(ctx context.Context, turn Turn) (Result, error) {
	var r struct {
		Messages   []Message      `json:"messages"`
		Reward     float64        `json:"reward"`
		Done       bool           `json:"done"`
		Correct    bool           `json:"correct"`
		ToolCalls  int            `json:"tool_calls"`
		ToolErrors int            `json:"tool_errors"`
		Info       map[string]any `json:"info"`
	}
	if err := p.request(ctx, map[string]any{"type": "step", "turn": turn}, &r); err != nil {
		return Result{}, err
	}
	if !r.Done && len(r.Messages) == 0 {
		return Result{}, errors.New(`environment step: reply is not done and has no "messages"`)
	}
	return Result{Messages: r.Messages, Reward: r.Reward, Done: r.Done, Correct: r.Correct,
		ToolCalls: r.ToolCalls, ToolErrors: r.ToolErrors, Info: r.Info}, nil
}

// Close closes stdin, waits up to CloseGrace for the process to exit, then kills it.
func (p *Process) Close() error {
	_ = p.stdin.Close()
	go func() { _ = p.wait() }()
	select {
	case <-p.exited:
	case <-time.After(p.cfg.CloseGrace):
		p.kill()
		<-p.exited
	}
	go func() { // drain the reader so that its goroutine ends
		for range p.replies {
		}
	}()
	return nil
}

// tailBuffer keeps the last max bytes written (the process's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(b), nil
}

func (t *tailBuffer) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	return clipText(strings.TrimSpace(lines[len(lines)-1]), 300)
}
