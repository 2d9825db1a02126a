package env

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/tokenizer"
)

// slowTool sleeps, then answers "ok".
type slowTool struct{ d time.Duration }

func (slowTool) Name() string            { return "calc" }
func (slowTool) Schema() json.RawMessage { return json.RawMessage(`{}`) }
func (s slowTool) Call(ctx context.Context, _ json.RawMessage) (string, error) {
	select {
	case <-time.After(s.d):
		return "ok", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// TestLimits: a policy that calls a tool in every turn is stopped by max_turns, by the response
// budget, or by the tool-time budget; each trajectory says which, and keeps what it sampled.
func TestLimits(t *testing.T) {
	tok, err := tokenizer.NewChar(charAlphabet)
	if err != nil {
		t.Fatal(err)
	}
	call := `<tool_call>{"name": "calc", "arguments": {}}</tool_call>`
	plan := func([]int32) []int32 { return append(tok.Encode(call), tokenizer.CharEOS) }
	turn := len(call) + 1
	run := func(lim Limits, tool Tool) Trajectory {
		te := &ToolEnv{Tools: []Tool{tool}, Score: func(string, task.Example) (float64, bool) { return 1, true }}
		r := &Runner{
			Decoder:  &forcedDecoder{vocab: tok.VocabSize(), plan: plan, rng: rand.New(rand.NewPCG(1, 1))},
			Template: &PlainTemplate{Tok: tok, Open: "[", Close: "]", Stop: []int32{tokenizer.CharEOS}, ToolFormat: FormatQwen3},
			Envs:     te.Factory(),
			Sampling: rollout.Config{Temperature: 1, MaxNewTokens: 100},
			Limits:   lim,
		}
		trajs, err := r.Run([]task.Example{{ID: "x", Prompt: "go"}}, 1)
		if err != nil {
			t.Fatal(err)
		}
		return trajs[0]
	}
	// Every turn is 57 sampled ids and every observation "[ok]" 4 ids; the prompt is BOS "go".
	tr := run(Limits{MaxTurns: 3}, slowTool{})
	if tr.Finish != FinishMaxTurns || tr.Turns != 3 || tr.ToolCalls != 3 || len(tr.IDs) != 3+3*turn+2*4 {
		t.Errorf("max_turns: finish %s turns %d calls %d ids %d, want max_turns 3 3 %d", tr.Finish, tr.Turns, tr.ToolCalls, len(tr.IDs), 3+3*turn+2*4)
	}
	// 100 response ids: one turn and its observation (61), then 39 ids of the second turn.
	tr = run(Limits{MaxTurns: 10, MaxResponse: 100}, slowTool{})
	resp, mask := tr.Response()
	model := 0
	for _, m := range mask {
		if m {
			model++
		}
	}
	if tr.Finish != FinishMaxTokens || tr.Turns != 2 || len(resp) != 100 || model != 96 {
		t.Errorf("max_response: finish %s turns %d response %d (model %d), want max_tokens 2 100 (96)", tr.Finish, tr.Turns, len(resp), model)
	}
	// 200 ms per call, 500 ms of tool time: the third call runs out (the second too, on a machine so
	// loaded that scheduling adds 50 ms per call; the count is not what this checks).
	tr = run(Limits{MaxTurns: 10, ToolTime: 500 * time.Millisecond}, slowTool{200 * time.Millisecond})
	if tr.Finish != FinishToolTimeout || tr.ToolCalls < 1 || tr.ToolCalls > 2 || tr.Turns != tr.ToolCalls+1 || !strings.Contains(tr.Reason, "deadline") {
		t.Errorf("tool_time: finish %s (%s) turns %d calls %d, want tool_timeout after 2 calls (1 under heavy load), in the turn after the last", tr.Finish, tr.Reason, tr.Turns, tr.ToolCalls)
	}
}
