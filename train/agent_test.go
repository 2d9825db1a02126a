package train

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/polo-rl/polo/metrics"
	"github.com/polo-rl/polo/objective"
	"github.com/polo-rl/polo/reward"
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
		"reward.otc.enabled=true", "reward.aspo.delta=-2"}
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
			for _, k := range []string{"turns_per_traj", "tool_calls_per_traj", "tool_error_rate", "tokens_model", "tokens_env", "finish_done_frac", "reward_otc_mean", "reward_verifier_mean"} {
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
	// The logged samples show whole trajectories: turns and observations, not just the first turn.
	samples, err := metrics.ReadSamples(filepath.Join(dir, "samples"))
	if err != nil {
		t.Fatal(err)
	}
	withObs := 0
	for _, s := range samples {
		if s.Kind != "rollout" {
			continue
		}
		if whole := strings.Join(s.Tokens, ""); s.Response != whole {
			t.Fatalf("logged response %q, the trajectory's tokens are %q", s.Response, whole)
		}
		if strings.Contains(s.Response, cfg.Agent.Open) {
			withObs++
		}
	}
	if withObs == 0 {
		t.Errorf("no logged rollout sample shows an observation (%q) among %d samples", cfg.Agent.Open, len(samples))
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

// TestAgentASPO: ASPO's bias reaches every trained token of a correct trajectory that called a
// tool, by the spec's formula: delta=-2, k=0.7, first calls at 2, 4, 6 of 10 response tokens,
// advantage 0.5: bias -2·(p−4)/10 = +0.4, 0, −0.4, clipped to ±0.35.
func TestAgentASPO(t *testing.T) {
	a := &agentLoop{aspo: ASPOShaping{Delta: -2, K: 0.7}}
	b := &rolloutBatch{agent: &agentRows{first: []int{2, 4, 6, -1, 3}}, correct: []bool{true, true, true, true, false}, group: []int{0, 0, 0, 0, 0}}
	adv := make([][]float64, 5)
	mask := make([][]float64, 5)
	for i := range 5 {
		b.resps = append(b.resps, make([]int32, 10))
		b.prompts = append(b.prompts, []int32{1})
		adv[i] = make([]float64, 12)
		mask[i] = make([]float64, 12)
		for j := range 10 {
			if j != 7 { // token 7 is an observation
				mask[i][j] = 1
				adv[i][j] = 0.5
			}
		}
	}
	adv[4] = make([]float64, 12)
	for j := range 10 {
		adv[4][j] = -1
	}
	vals := map[string]float64{}
	if err := a.shapeAdvantages(b, adv, mask, vals); err != nil {
		t.Fatal(err)
	}
	want := []float64{0.85, 0.5, 0.15, 0.5, -1} // no call (row 3) and wrong (row 4) keep theirs
	for i, w := range want {
		for j := range 12 {
			exp := 0.0
			if mask[i][j] != 0 || i == 4 && j < 10 {
				exp = w
			}
			if i == 4 && j == 7 {
				exp = -1
			}
			if d := adv[i][j] - exp; d > 1e-12 || d < -1e-12 {
				t.Fatalf("row %d token %d: advantage %v, want %v", i, j, adv[i][j], exp)
			}
		}
	}
	if vals["aspo_shaped_frac"] != 0.4 {
		t.Errorf("aspo_shaped_frac = %v, want 0.4 (rows 0 and 2)", vals["aspo_shaped_frac"])
	}
}

// TestAgentOTC: OTC replaces each reward by rtool(m, n)·reward per group, n the fewest calls of a
// correct trajectory (here 1): one call keeps 1, two calls get sin((4/3)·π/2) = √3/2, a wrong
// answer 0; with scope global a later group of the same prompt keeps n = 1.
func TestAgentOTC(t *testing.T) {
	a := &agentLoop{otc: reward.NewOTCHistory(), otcCfg: reward.OTCConfig{C: 3}}
	ex := task.Example{ID: "q", Prompt: "12*34="}
	b := &rolloutBatch{agent: &agentRows{calls: []int{1, 2, 1, 0}}, group: []int{0, 0, 0, 0}}
	for range 4 {
		b.examples = append(b.examples, ex)
	}
	main := []reward.Score{{Value: 1, Correct: true}, {Value: 1, Correct: true}, {Value: 1, Correct: true}, {Value: 0}}
	shaped, err := a.shapeOTC(b, main)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, math.Sqrt(3) / 2, 1, 0}
	for i, w := range want {
		if math.Abs(shaped[i]-w) > 1e-12 || main[i].Value != []float64{1, 1, 1, 0}[i] {
			t.Errorf("row %d: %v (verifier %v), want %v", i, shaped[i], main[i].Value, w)
		}
	}
	// Next step: only two-call answers are correct, but the history remembers n = 1.
	b.agent.calls = []int{2, 2, 3, 3}
	main = []reward.Score{{Value: 1, Correct: true}, {Value: 1, Correct: true}, {Value: 0}, {Value: 0}}
	if shaped, err = a.shapeOTC(b, main); err != nil {
		t.Fatal(err)
	}
	if math.Abs(shaped[0]-math.Sqrt(3)/2) > 1e-12 {
		t.Errorf("global scope: %v, want √3/2", shaped[0])
	}
}

// TestAgentProcessEnv trains two steps against the documented example environment process
// (examples/env/arith_env.py): every trajectory talks to its own Python process, none fails, and
// the reward is the process's verdict.
func TestAgentProcessEnv(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "proc")
	cfg := agentRun(t, dir, "agent.env=process", "agent.command=[python3, ../examples/env/arith_env.py]",
		"rl.steps=2", "eval.every=0", "task.test_size=8", "sampling.prompts_per_step=4", "reward.otc.enabled=false", "sft.steps=5")
	if _, err := Run(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	recs, err := metrics.Read(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for _, rec := range recs {
		if rec.Phase != "rl" {
			continue
		}
		steps++
		v := rec.Values
		if v["finish_env_error_frac"] != 0 || v["finish_tool_timeout_frac"] != 0 || v["reward_mean"] != v["accuracy"] {
			t.Errorf("step %d: env errors %v, timeouts %v, reward %v vs accuracy %v", rec.Step, v["finish_env_error_frac"], v["finish_tool_timeout_frac"], v["reward_mean"], v["accuracy"])
		}
	}
	if steps != 2 {
		t.Fatalf("%d rl records, want 2", steps)
	}
}

// TestToolShapingConfig: reward.otc and reward.aspo are the config names; the deprecated
// agent.otc / agent.aspo move there (their set fields override, the aliases end up zero, so
// config.yaml records reward.*); both are refused outside agent mode.
func TestToolShapingConfig(t *testing.T) {
	agent := []string{"agent.enabled=true", "agent.tool_format=calc", "task.name=arithmetic"}
	c, err := LoadConfig("", append(agent, "agent.otc.enabled=true", "agent.otc.scope=local", "agent.aspo.delta=-2.5"))
	if err != nil {
		t.Fatal(err)
	}
	want := OTCShaping{Enabled: true, C: 0, Alpha: 1, Variant: "grpo", Scope: "local"}
	if c.Reward.OTC != want || c.Reward.ASPO != (ASPOShaping{Delta: -2.5, K: 0.7}) || c.Agent.OTC != (OTCShaping{}) || c.Agent.ASPO != (ASPOShaping{}) {
		t.Errorf("aliases not moved: reward.otc %+v, reward.aspo %+v, agent.otc %+v, agent.aspo %+v", c.Reward.OTC, c.Reward.ASPO, c.Agent.OTC, c.Agent.ASPO)
	}
	c, err = LoadConfig("", append(agent, "reward.otc.enabled=true", "reward.aspo.delta=-2"))
	if err != nil || !c.Reward.OTC.Enabled || c.Reward.ASPO.Delta != -2 {
		t.Errorf("reward.otc / reward.aspo: %+v %+v (%v)", c.Reward.OTC, c.Reward.ASPO, err)
	}
	rw, err := newRewarder(c)
	if err != nil || !slices.Equal(rw.names, []string{"verifier", "otc"}) || rw.weights[1] != c.Reward.Weight {
		t.Errorf("components %v weights %v (%v), want verifier and otc at the verifier's weight", rw.names, rw.weights, err)
	}
	// verifier + otc = OTC's reward (two calls where one suffices: √3/2 of 1).
	b := &rolloutBatch{agent: &agentRows{otc: []float64{math.Sqrt(3)/2 - 1, 0}}, examples: make([]task.Example, 2), group: []int{0, 0}}
	if err := rw.components(nil, b, []string{"", ""}, []reward.Score{{Value: 1, Correct: true}, {Value: 0}}); err != nil {
		t.Fatal(err)
	}
	if math.Abs(b.rewards[0]-math.Sqrt(3)/2) > 1e-12 || b.rewards[1] != 0 || b.components[0][0] != 1 {
		t.Errorf("rewards %v, components %v; want √3/2 and 0, the verifier's 1 kept as its component", b.rewards, b.components)
	}
	for _, sets := range [][]string{{"reward.otc.enabled=true"}, {"reward.aspo.delta=-2"}, {"agent.otc.enabled=true"}} {
		if _, err := LoadConfig("", sets); err == nil || !strings.Contains(err.Error(), "agent mode") {
			t.Errorf("%v without agent mode: %v", sets, err)
		}
	}
	if _, err := LoadConfig("", append(agent, "reward.otc.scope=galaxy")); err == nil || !strings.Contains(err.Error(), "reward.otc.scope") {
		t.Errorf("bad scope: %v", err)
	}
}
