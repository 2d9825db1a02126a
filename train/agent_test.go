package train

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/metrics"
	"github.com/polo-rl/polo/objective"
	"github.com/polo-rl/polo/task"
)

// TestAgentMaskReachesObjective: in agent mode the objective's mask is 0 on the environment's tokens
// inside a response, so the loss gradient there is exactly 0 while the policy's tokens get one.
func TestAgentMaskReachesObjective(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Sampling.MaxNewTokens = 8
	r := &runner{cfg: cfg}
	// Two rows of one group: turn, observation, turn (E = environment token).
	//   row 0: M M E E M M      row 1: M E M
	masks := [][]bool{{true, true, false, false, true, true}, {true, false, true}}
	b := &rolloutBatch{agent: &agentRows{mask: masks}}
	for i, m := range masks {
		b.examples = append(b.examples, task.Example{ID: fmt.Sprint(i), Prompt: "2*3="})
		b.prompts = append(b.prompts, []int32{1, 5})
		resp := make([]int32, len(m))
		for j := range resp {
			resp[j] = int32(3 + j)
		}
		b.resps = append(b.resps, resp)
		b.finish = append(b.finish, "stop")
		b.group = append(b.group, 0)
	}
	b.rewards = []float64{1, 0}
	ob := r.objectiveBatch(b)
	for i, m := range masks {
		for j := range 8 {
			want := 0.0
			if j < len(m) && m[j] {
				want = 1
			}
			if ob.Mask[i][j] != want {
				t.Fatalf("row %d token %d: mask %v, want %v", i, j, ob.Mask[i][j], want)
			}
		}
	}
	ob.LogP = [][]float64{{-1, -2, -1, -1, -0.5, -1, 0, 0}, {-1, -3, -2, 0, 0, 0, 0, 0}}
	ob.OldLogP, ob.RefLogP = ob.LogP, ob.LogP
	obj, err := objective.New("grpo", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := objective.Prepare(obj, ob)
	if err != nil {
		t.Fatal(err)
	}
	p.Apply(ob)
	res, err := obj.Loss(ob)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range masks {
		for j, model := range m {
			g := res.GradLogP[i][j]
			if model && g == 0 || !model && g != 0 {
				t.Errorf("row %d token %d (policy %v): dL/dlogp = %v", i, j, model, g)
			}
		}
	}
}

func agentRun(t *testing.T, dir string, sets ...string) Config {
	base := []string{"task.name=arithmetic", "task.options.ops=*", "task.options.digits=1", "sft.steps=40",
		"agent.enabled=true", "agent.tool_format=calc", "agent.max_turns=3", "agent.turn_tokens=6",
		"sampling.max_new_tokens=24", "rl.steps=6", "eval.every=3", "task.test_size=16",
		"agent.otc.enabled=true", "agent.aspo.delta=-2"}
	return smallRun(t, dir, append(base, sets...)...)
}

// TestAgentRunAndResume trains a few steps in agent mode (a character model after a short warm-up on
// plain answers, with the calc format: its sampled turns sometimes call the calculator), checks the agent metrics, and that a resume from an
// earlier checkpoint redoes the lost steps bit-identically — the OTC history included.
func TestAgentRunAndResume(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agent")
	cfg := agentRun(t, dir)
	if _, err := Run(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	recs, err := metrics.Read(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var calls, envTok, modelTok float64
	evals := 0
	for _, rec := range recs {
		switch rec.Phase {
		case "rl":
			for _, k := range []string{"turns_per_traj", "tool_calls_per_traj", "tool_error_rate", "tokens_model", "tokens_env", "finish_done_frac"} {
				if _, ok := rec.Values[k]; !ok {
					t.Fatalf("rl step %d has no %s", rec.Step, k)
				}
			}
			calls += rec.Values["tool_calls_per_traj"]
			envTok += rec.Values["tokens_env"]
			modelTok += rec.Values["tokens_model"]
		case "eval", "eval-sft":
			if _, ok := rec.Values["tool_calls_per_traj"]; !ok {
				t.Fatalf("%s record without tool_calls_per_traj: %v", rec.Phase, rec.Values)
			}
			evals++
		}
	}
	t.Logf("over %d rl steps: tool calls/trajectory %.3f, env tokens %.2f, model tokens %.2f (sums of step means); last step %v", cfg.RL.Steps, calls, envTok, modelTok, recs[len(recs)-2].Values)
	if calls == 0 || envTok == 0 || modelTok == 0 || evals < 2 {
		t.Fatalf("calls %v, env tokens %v, model tokens %v over the run, %d evaluations: the policy's turns never reached the calculator", calls, envTok, modelTok, evals)
	}
	var st runState
	data, err := os.ReadFile(filepath.Join(dir, "checkpoints", "rl-000006", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Extra[otcStateKey]) < 3 || !strings.HasPrefix(string(st.Extra[otcStateKey]), "{") {
		t.Errorf("checkpoint has no OTC history: %q", st.Extra[otcStateKey])
	}
	want := comparableMetrics(t, dir)
	ck := filepath.Join(dir, "checkpoints")
	if err := os.WriteFile(filepath.Join(ck, "rl-000006", "model", "model.safetensors"), []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Resume(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	sameMetrics(t, want, comparableMetrics(t, dir))
}

// TestAgentSFTTrace: with sft_traces calc the SFT target is the expert's tool-use trace, with the
// calculator's observation left out of the loss; sft_repeat_call 1 calls twice.
func TestAgentSFTTrace(t *testing.T) {
	for _, tt := range []struct {
		repeat string
		want   string
	}{
		{"0", "{4*7}<eos>[28]28<eos>"},
		{"1", "{4*7}<eos>[28]{4*7}<eos>[28]28<eos>"},
	} {
		cfg := agentRun(t, filepath.Join(t.TempDir(), "run"), "agent.sft_traces=calc", "agent.sft_repeat_call="+tt.repeat)
		r := &runner{cfg: cfg, dir: cfg.RunDir, ckptDir: filepath.Join(cfg.RunDir, "checkpoints"), opts: Options{Log: io.Discard}}
		if err := r.setup(); err != nil {
			t.Fatal(err)
		}
		ids, mask, err := r.sftTarget(task.Example{ID: "x", Prompt: "4*7=", Answer: "28"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		r.log.Close()
		if got := r.codec.tok.Decode(ids, false); got != tt.want {
			t.Errorf("repeat %s: trace %q, want %q", tt.repeat, got, tt.want)
		}
		var trained string
		for i, m := range mask {
			if m {
				trained += r.codec.tok.Decode(ids[i:i+1], false)
			}
		}
		if want := strings.NewReplacer("[28]", "").Replace(tt.want); trained != want {
			t.Errorf("repeat %s: trained tokens %q, want %q", tt.repeat, trained, want)
		}
	}
}
