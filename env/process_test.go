package env

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/tokenizer"
)

const charAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789 {}[]\":,<>/_*+-=.?!'\n"

// TestProcessFaults runs one batch in which environment processes crash at reset or at a step,
// answer with malformed JSON, hang, or report an error, next to healthy ones and a policy that
// writes a malformed tool call. Each fault ends only its own trajectory, with a logged reason;
// the others finish with the environment's reward.
func TestProcessFaults(t *testing.T) {
	tok, err := tokenizer.NewChar(charAlphabet)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &PlainTemplate{Tok: tok, Open: "[", Close: "]", Stop: []int32{tokenizer.CharEOS}, ToolFormat: FormatQwen3}
	faults := []string{"none", "crash", "malformed", "hang", "error", "crash_reset", "badcall"}
	var exs []task.Example
	for _, f := range faults {
		exs = append(exs, task.Example{ID: f, Prompt: "q " + f + "?", Answer: "1", Meta: map[string]string{"fault": f}})
	}
	call := `<tool_call>{"name": "calc", "arguments": {"x": 7}}</tool_call>`
	bad := `<tool_call>{"name": "calc", "arguments": {"x": </tool_call>`
	plan := func(ctx []int32) []int32 {
		text := tok.Decode(ctx, true)
		first := call
		if strings.Contains(text, "badcall") {
			first = bad
		}
		var s string
		switch strings.Count(text, "[") { // observations so far
		case 0:
			s = first
		default:
			s = "ok 1"
		}
		return append(tok.Encode(s), tokenizer.CharEOS)
	}
	dec := &forcedDecoder{vocab: tok.VocabSize(), plan: plan, rng: rand.New(rand.NewPCG(1, 2))}
	var mu sync.Mutex
	var logs []string
	r := &Runner{
		Decoder:  dec,
		Template: tmpl,
		Envs:     ProcessConfig{Command: []string{"python3", "testdata/fault_env.py"}, CloseGrace: time.Second}.Factory(),
		Sampling: rollout.Config{Temperature: 1, TopP: 1, MaxNewTokens: 80},
		Limits:   Limits{MaxTurns: 4, MaxTokens: 400, StepTimeout: 3 * time.Second},
		Log:      func(s string) { mu.Lock(); logs = append(logs, s); mu.Unlock() },
	}
	t0 := time.Now()
	trajs, err := r.Run(exs, 7)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el > 20*time.Second {
		t.Errorf("the batch took %v; the hanging environment should cost about one step timeout", el)
	}
	want := map[string]struct {
		finish, reason string
		turns, calls   int
		errs           int
		reward         float64
		envText        string // the observation after the first turn, as rendered
	}{
		"none":        {FinishDone, "", 2, 1, 0, 1, `[{"x": 7}]`},
		"badcall":     {FinishDone, "", 2, 1, 1, 1, "[error: tool call 1: malformed : unexpected ]"},
		"crash":       {FinishEnvError, "turn 1: environment process exited (exit status 7): Traceback: simulated crash", 1, 0, 0, 0, ""},
		"malformed":   {FinishEnvError, `malformed reply "{not json"`, 1, 0, 0, 0, ""},
		"hang":        {FinishToolTimeout, "turn 1: environment process: no reply (context deadline exceeded); killed", 1, 0, 0, 0, ""},
		"error":       {FinishEnvError, "environment: no such puzzle", 1, 0, 0, 0, ""},
		"crash_reset": {FinishEnvError, "reset: environment process exited (exit status 3): boom at reset", 0, 0, 0, 0, ""},
	}
	for _, tr := range trajs {
		w := want[tr.Example.ID]
		if tr.Finish != w.finish || !strings.Contains(tr.Reason, w.reason) || tr.Turns != w.turns ||
			tr.ToolCalls != w.calls || tr.ToolErrors != w.errs || tr.Reward != w.reward {
			t.Errorf("%s: finish %s (%q), turns %d, calls %d, errors %d, reward %v; want %s (%q), %d, %d, %d, %v",
				tr.Example.ID, tr.Finish, tr.Reason, tr.Turns, tr.ToolCalls, tr.ToolErrors, tr.Reward,
				w.finish, w.reason, w.turns, w.calls, w.errs, w.reward)
		}
		if w.envText != "" {
			var env []int32
			for _, s := range tr.Segments {
				if s.Source == SourceEnv {
					env = tr.IDs[s.Start:s.End]
					break
				}
			}
			// The char tokenizer drops upper-case letters ("JSON", "EOF" of Go's message).
			if got := tok.Decode(env, false); got != w.envText {
				t.Errorf("%s: observation %q, want %q", tr.Example.ID, got, w.envText)
			}
		}
	}
	if len(logs) != 5 {
		t.Errorf("%d log lines, want one per faulty trajectory (5):\n%s", len(logs), strings.Join(logs, "\n"))
	}
	for _, l := range logs {
		if !strings.Contains(l, "trajectory ") || strings.Contains(l, "\n") {
			t.Errorf("log line %q", l)
		}
	}
	st := Stats(trajs)
	if st["tool_calls_per_traj"] != 2.0/7 || st["tool_error_rate"] != 0.5 || st["finish_env_error_frac"] != 4.0/7 {
		t.Errorf("stats %v", st)
	}
}

// TestProcessNotReading: a process that stops reading its input cannot block a request past its
// deadline, even when the request is larger than the pipe's buffer.
func TestProcessNotReading(t *testing.T) {
	p, err := StartProcess(ProcessConfig{Command: []string{"sleep", "60"}, CloseGrace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err = p.Reset(ctx, task.Example{ID: "big", Prompt: strings.Repeat("x", 4<<20)})
	if err == nil || !strings.Contains(err.Error(), "not reading its input") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want one saying the process is not reading", err)
	}
	if el := time.Since(t0); el > 5*time.Second {
		t.Errorf("the request took %v past its 0.5 s deadline", el)
	}
}
