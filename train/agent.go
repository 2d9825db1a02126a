package train

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/polo-rl/polo/env"
	"github.com/polo-rl/polo/metrics"
	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/reward"
	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
)

// AgentConfig turns rollouts into multi-turn, tool-using trajectories (package env; docs/agents.md).
// The response of a row is everything after the first prompt: the policy's turns and the
// environment's observations; only the policy's tokens are trained on. sampling.max_new_tokens is
// the budget of that whole response.
type AgentConfig struct {
	Enabled bool `yaml:"enabled"`
	// Env is "builtin" (tools run in polo; the final answer is scored by reward.verifier) or
	// "process" (an external environment speaking JSON lines, started with Command).
	Env     string   `yaml:"env"`
	Command []string `yaml:"command"`
	// Tools of the builtin environment: calculator, python (bubblewrap sandbox), search.
	Tools        []string `yaml:"tools"`
	SearchCorpus string   `yaml:"search_corpus"` // JSONL of {id, title, text} for the search tool
	// ToolFormat is how the policy writes calls: qwen3 | llama3 | none; "" picks it from the
	// tokenizer (<tool_call> → qwen3, <|eot_id|> → llama3, else none).
	ToolFormat string `yaml:"tool_format"`
	ToolRole   string `yaml:"tool_role"` // role of tool results: tool | ipython; "" = tool (ipython for llama3)
	System     string `yaml:"system"`    // builtin: a system message before the prompt
	// Open and Close wrap observations for tokenizers without a chat template (char).
	Open        string  `yaml:"open"`
	Close       string  `yaml:"close"`
	MaxTurns    int     `yaml:"max_turns"`    // policy turns per trajectory
	TurnTokens  int     `yaml:"turn_tokens"`  // new tokens per policy turn
	MaxTokens   int     `yaml:"max_tokens"`   // whole trajectory, prompt included
	StepTimeout float64 `yaml:"step_timeout"` // seconds per environment step (all its tool calls)
	ToolTime    float64 `yaml:"tool_time"`    // seconds of environment time per trajectory
	// Deprecated aliases of reward.otc and reward.aspo: their set (non-zero) fields are moved there
	// by Config.Validate, which leaves these zero.
	OTC  OTCShaping  `yaml:"otc"`
	ASPO ASPOShaping `yaml:"aspo"`
	// SFTTraces makes the SFT warm-up train on tool-use traces instead of bare answers: "calc"
	// writes {prompt's expression} → the calculator's result → the answer (calc format, builtin
	// calculator); "" keeps the reference answers.
	SFTTraces string `yaml:"sft_traces"`
	// SFTRepeatCall is the fraction of calc traces that call the calculator a second, redundant
	// time before answering (tool overuse that OTC should remove).
	SFTRepeatCall float64 `yaml:"sft_repeat_call"`
}

// OTCShaping is OTC's tool-efficiency reward (reward.otc; spec A1): the reward becomes
// alpha * rtool(m, n) * reward, with m the trajectory's tool calls and n the fewest calls of a correct
// trajectory of the same prompt (per group, or across steps with scope global; checkpointed). It is
// logged as the component "otc", the difference to the verifier's score, with the verifier's weight.
type OTCShaping struct {
	Enabled bool    `yaml:"enabled"`
	C       float64 `yaml:"c"`       // smoothing constant; 0 = agent.max_turns
	Alpha   float64 `yaml:"alpha"`   // scale; 0 = 1
	Variant string  `yaml:"variant"` // grpo | ppo
	Scope   string  `yaml:"scope"`   // global | local
}

// ASPOShaping is ASPO's advantage shaping for early tool calls (reward.aspo; spec A6): correct trajectories that
// call a tool get delta·(p − mean p)/mean L added to their advantage, clipped to ±k·|A|.
type ASPOShaping struct {
	Delta float64 `yaml:"delta"` // 0 = off; -2 conservative, -2.5 aggressive
	K     float64 `yaml:"k"`     // clip fraction; 0.7 conservative, 0.9 aggressive
}

// moveShapingAliases moves the set fields of the deprecated agent.otc and agent.aspo to reward.otc
// and reward.aspo (an alias field overrides the reward one) and zeroes the aliases.
func (c *Config) moveShapingAliases() {
	o, r := c.Agent.OTC, &c.Reward.OTC
	if o.Enabled {
		r.Enabled = true
	}
	if o.C != 0 {
		r.C = o.C
	}
	if o.Alpha != 0 {
		r.Alpha = o.Alpha
	}
	if o.Variant != "" {
		r.Variant = o.Variant
	}
	if o.Scope != "" {
		r.Scope = o.Scope
	}
	if c.Agent.ASPO.Delta != 0 {
		c.Reward.ASPO.Delta = c.Agent.ASPO.Delta
	}
	if c.Agent.ASPO.K != 0 {
		c.Reward.ASPO.K = c.Agent.ASPO.K
	}
	c.Agent.OTC, c.Agent.ASPO = OTCShaping{}, ASPOShaping{}
}

// validateToolShaping checks reward.otc and reward.aspo, which shape tool calls: both need agent mode.
func (r RewardConfig) validateToolShaping(agent bool) error {
	switch {
	case r.OTC.Variant != "" && r.OTC.Variant != "grpo" && r.OTC.Variant != "ppo":
		return fmt.Errorf("config field reward.otc.variant: want grpo or ppo, got %q", r.OTC.Variant)
	case r.OTC.Scope != "" && r.OTC.Scope != "global" && r.OTC.Scope != "local":
		return fmt.Errorf("config field reward.otc.scope: want global or local, got %q", r.OTC.Scope)
	case r.OTC.C < 0 || r.OTC.Alpha < 0:
		return fmt.Errorf("config fields reward.otc.c and reward.otc.alpha: want >= 0")
	case r.ASPO.Delta != 0 && !(r.ASPO.K > 0 && r.ASPO.K <= 1):
		return fmt.Errorf("config field reward.aspo.k: want in (0, 1] when reward.aspo.delta is set")
	case (r.OTC.Enabled || r.ASPO.Delta != 0) && !agent:
		return fmt.Errorf("config fields reward.otc / reward.aspo shape tool calls: they need agent mode (agent.enabled: true), or reward.otc.enabled: false and reward.aspo.delta: 0")
	}
	return nil
}

func (a AgentConfig) validate() error {
	if !a.Enabled {
		return nil
	}
	switch {
	case a.Env != "builtin" && a.Env != "process":
		return fmt.Errorf("config field agent.env: want builtin or process, got %q", a.Env)
	case a.Env == "process" && len(a.Command) == 0:
		return fmt.Errorf("config field agent.command: agent.env process needs the command that starts the environment")
	case a.MaxTurns < 1:
		return fmt.Errorf("config field agent.max_turns: want >= 1")
	case a.TurnTokens < 1:
		return fmt.Errorf("config field agent.turn_tokens: want >= 1")
	case a.MaxTokens < 2:
		return fmt.Errorf("config field agent.max_tokens: want >= 2")
	case !(a.StepTimeout > 0) || !(a.ToolTime > 0):
		return fmt.Errorf("config fields agent.step_timeout and agent.tool_time: want > 0 seconds")
	}
	if a.SFTTraces != "" && (a.SFTTraces != "calc" || a.ToolFormat != env.FormatCalc || a.Env != "builtin") {
		return fmt.Errorf("config field agent.sft_traces: %q needs sft_traces calc with tool_format calc and env builtin", a.SFTTraces)
	}
	if a.SFTRepeatCall < 0 || a.SFTRepeatCall > 1 {
		return fmt.Errorf("config field agent.sft_repeat_call: want in [0, 1]")
	}
	if _, err := env.ParseToolCalls(a.ToolFormat, ""); a.ToolFormat != "" && err != nil {
		return fmt.Errorf("config field agent.tool_format: %v", err)
	}
	for _, t := range a.Tools {
		if t != "calculator" && t != "python" && t != "search" {
			return fmt.Errorf("config field agent.tools: unknown tool %q (calculator, python, search)", t)
		}
	}
	return nil
}

// agentAlphabet is what a character tokenizer needs beyond the task's alphabet in agent mode: the
// observation delimiters and the calc format's braces (characters already in alphabet are left out).
func agentAlphabet(c Config, alphabet string) string {
	a := c.Agent
	if !a.Enabled || c.Tokenizer.Kind != "char" {
		return ""
	}
	extra := a.Open + a.Close
	if a.ToolFormat == env.FormatCalc {
		extra += "{}"
	}
	var out []rune
	for _, r := range extra {
		if !strings.ContainsRune(alphabet, r) && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return string(out)
}

// agentLoop is the agent mode of a run.
type agentLoop struct {
	cfg    AgentConfig
	aspo   ASPOShaping // reward.aspo
	tmpl   env.Template
	envs   env.Factory
	otc    *reward.OTCHistory
	otcCfg reward.OTCConfig

	dec             *model.Decoder // reused across rounds and steps (decoder)
	decModel        *model.Model
	decRows, decLen int
}

// agentRows is the per-row agent data of a rollout batch (parallel to its rows).
type agentRows struct {
	mask                        [][]bool // per response token: the policy's (true) or the environment's
	turns, calls, errs, first   []int
	modelTok, envTok, promptTok []int
	finish                      []string
	otc                         []float64 // reward.otc: OTC's reward minus the verifier's score (component "otc")
}

func (a *agentRows) add(o *agentRows) {
	a.mask = append(a.mask, o.mask...)
	a.turns = append(a.turns, o.turns...)
	a.calls = append(a.calls, o.calls...)
	a.errs = append(a.errs, o.errs...)
	a.first = append(a.first, o.first...)
	a.modelTok = append(a.modelTok, o.modelTok...)
	a.envTok = append(a.envTok, o.envTok...)
	a.promptTok = append(a.promptTok, o.promptTok...)
	a.finish = append(a.finish, o.finish...)
	a.otc = append(a.otc, o.otc...)
}

func (a *agentRows) subset(rows []int) *agentRows {
	if a == nil {
		return nil
	}
	o := &agentRows{}
	for _, i := range rows {
		o.mask = append(o.mask, a.mask[i])
		o.turns = append(o.turns, a.turns[i])
		o.calls = append(o.calls, a.calls[i])
		o.errs = append(o.errs, a.errs[i])
		o.first = append(o.first, a.first[i])
		o.modelTok = append(o.modelTok, a.modelTok[i])
		o.envTok = append(o.envTok, a.envTok[i])
		o.promptTok = append(o.promptTok, a.promptTok[i])
		o.finish = append(o.finish, a.finish[i])
		if a.otc != nil {
			o.otc = append(o.otc, a.otc[i])
		}
	}
	return o
}

// appendAgent joins the agent rows of two batches (nil when neither has any).
func appendAgent(a, o *agentRows) *agentRows {
	if o == nil {
		return a
	}
	if a == nil {
		a = &agentRows{}
	}
	a.add(o)
	return a
}

// trained reports whether response token j of row i is trained on.
func (a *agentRows) trained(i, j int) bool { return a == nil || a.mask[i][j] }

func newAgentLoop(r *runner) (*agentLoop, error) {
	c := r.cfg.Agent
	if !c.Enabled {
		return nil, nil
	}
	a := &agentLoop{cfg: c, aspo: r.cfg.Reward.ASPO}
	format := c.ToolFormat
	if r.codec.hf != nil {
		if format == "" {
			format = env.FormatNone
			if _, ok := r.codec.hf.TokenID("<tool_call>"); ok {
				format = env.FormatQwen3
			} else if _, ok := r.codec.hf.TokenID("<|eot_id|>"); ok {
				format = env.FormatLlama3
			}
		}
		t, err := env.NewHFTemplate(r.codec.hf, format, nil)
		if err != nil {
			return nil, err
		}
		a.tmpl = t
	} else {
		if format == "" {
			format = env.FormatNone
		}
		a.tmpl = &env.PlainTemplate{Tok: r.codec.tok, Open: c.Open, Close: c.Close, Stop: []int32{r.codec.eos}, ToolFormat: format}
	}
	switch c.Env {
	case "process":
		a.envs = env.ProcessConfig{Command: c.Command}.Factory()
	default:
		role := c.ToolRole
		if role == "" {
			role = "tool"
			if format == env.FormatLlama3 {
				role = "ipython"
			}
		}
		te := &env.ToolEnv{ToolRole: role, System: c.System, Score: func(ans string, ex task.Example) (float64, bool) {
			s := r.score(ans, ex)
			return s.Value, s.Correct
		}}
		for _, name := range c.Tools {
			switch name {
			case "calculator":
				te.Tools = append(te.Tools, env.Calculator{})
			case "python":
				sb, err := reward.NewSandbox(reward.DefaultSandboxConfig())
				if err != nil {
					return nil, fmt.Errorf("agent tool python: %w", err)
				}
				te.Tools = append(te.Tools, env.Python{Sandbox: sb})
			case "search":
				s, err := env.LoadSearch(c.SearchCorpus, 3)
				if err != nil {
					return nil, fmt.Errorf("agent tool search: %w", err)
				}
				te.Tools = append(te.Tools, s)
			}
		}
		a.envs = te.Factory()
	}
	if o := r.cfg.Reward.OTC; o.Enabled {
		a.otc = reward.NewOTCHistory()
		a.otcCfg = reward.OTCConfig{C: o.C, Alpha: o.Alpha, Variant: o.Variant, Scope: o.Scope}
		if a.otcCfg.C == 0 {
			a.otcCfg.C = float64(c.MaxTurns)
		}
	}
	return a, nil
}

// run samples one trajectory per example with the current policy.
func (a *agentLoop) run(r *runner, exs []task.Example, scfg rollout.Config, seed uint64) ([]env.Trajectory, error) {
	scfg.MaxNewTokens = a.cfg.TurnTokens
	scfg.StopTokens = []int32{r.codec.eos}
	run := &env.Runner{
		Decoders: func(rows, maxLen int) (rollout.Decoder, error) { return a.decoder(r, rows, maxLen) },
		Template: a.tmpl,
		Envs:     a.envs,
		Sampling: scfg,
		Limits: env.Limits{MaxTurns: a.cfg.MaxTurns, MaxTokens: a.cfg.MaxTokens, MaxResponse: r.cfg.Sampling.MaxNewTokens,
			StepTimeout: time.Duration(a.cfg.StepTimeout * float64(time.Second)), ToolTime: time.Duration(a.cfg.ToolTime * float64(time.Second))},
		Log: func(line string) { fmt.Fprintf(r.opts.Log, "agent: %s\n", line) },
	}
	return run.Run(exs, seed)
}

// decoder returns a KV-cache decoder for one round. Its batch and capacity are fixed for the run
// (a step's rows; max_tokens plus one turn), so that rounds with fewer active rows or shorter
// contexts compile no new graphs: the prefill graph varies only with the bucketed context length.
func (a *agentLoop) decoder(r *runner, rows, maxLen int) (rollout.Decoder, error) {
	rows = max(rows, r.cfg.Sampling.PromptsPerStep*r.cfg.Sampling.GroupSize)
	maxLen = max(maxLen, a.cfg.MaxTokens+a.cfg.TurnTokens)
	if a.dec == nil || a.decRows != rows || a.decLen != maxLen || a.decModel != r.policy {
		d, err := r.policy.NewDecoder(rows, maxLen)
		if err != nil {
			return nil, err
		}
		a.dec, a.decRows, a.decLen, a.decModel = d, rows, maxLen, r.policy
	}
	return a.dec, nil
}

// collect is runner.collect in agent mode: trajectories instead of single completions.
func (a *agentLoop) collect(r *runner, purpose string, step, nPrompts int) (*rolloutBatch, float64, float64, error) {
	g := r.cfg.Sampling.GroupSize
	exs, err := r.prompts.draw(purpose, step, nPrompts)
	if err != nil {
		return nil, 0, 0, err
	}
	b := &rolloutBatch{agent: &agentRows{}}
	for i, ex := range exs {
		for range g {
			b.examples = append(b.examples, ex)
			b.group = append(b.group, i)
		}
	}
	s := r.cfg.Sampling
	scfg := rollout.Config{Temperature: s.Temperature, TopK: s.TopK, TopP: s.TopP, MinP: s.MinP}
	t0 := time.Now()
	trajs, err := a.run(r, b.examples, scfg, seedFor(r.cfg.Seed, purpose+"-sample", step))
	if err != nil {
		return nil, 0, 0, err
	}
	rolloutS := time.Since(t0).Seconds()
	t1 := time.Now()
	texts := make([]string, len(trajs))
	main := make([]reward.Score, len(trajs))
	for i := range trajs {
		t := &trajs[i]
		prompt, resp, mask := t.IDs[:t.PromptLen], t.IDs[t.PromptLen:], t.Mask[t.PromptLen:]
		if t.PromptLen == 0 { // the environment failed before the prompt: an empty row that trains nothing
			if prompt, err = r.codec.prompt(t.Example); err != nil {
				return nil, 0, 0, err
			}
		}
		b.prompts = append(b.prompts, prompt)
		b.resps = append(b.resps, resp)
		b.temps = append(b.temps, nil)
		finish := "length"
		switch t.Finish {
		case env.FinishDone:
			finish = "stop"
		case env.FinishEnvError, env.FinishToolTimeout:
			finish = "error"
		}
		b.finish = append(b.finish, finish)
		ag := b.agent
		ag.mask = append(ag.mask, mask)
		ag.turns = append(ag.turns, t.Turns)
		ag.calls = append(ag.calls, t.ToolCalls)
		ag.errs = append(ag.errs, t.ToolErrors)
		ag.first = append(ag.first, t.FirstCall)
		ag.finish = append(ag.finish, t.Finish)
		ag.promptTok = append(ag.promptTok, t.PromptLen)
		model := 0
		for _, m := range mask {
			if m {
				model++
			}
		}
		ag.modelTok = append(ag.modelTok, model)
		ag.envTok = append(ag.envTok, len(mask)-model)
		texts[i] = lastTurnText(a.tmpl, t)
		main[i] = reward.Score{Value: t.Reward, Correct: t.Correct}
	}
	if a.otc != nil {
		shaped, err := a.shapeOTC(b, main)
		if err != nil {
			return nil, 0, 0, err
		}
		b.agent.otc = make([]float64, len(shaped))
		for i, v := range shaped {
			b.agent.otc[i] = v - main[i].Value
		}
	}
	if err := r.rewarder.components(r, b, texts, main); err != nil {
		return nil, 0, 0, err
	}
	return b, rolloutS, time.Since(t1).Seconds(), nil
}

// lastTurnText is the text of the policy's last turn (what the extra reward verifiers score).
func lastTurnText(tmpl env.Template, t *env.Trajectory) string {
	for k := len(t.Segments) - 1; k >= 0; k-- {
		if s := t.Segments[k]; s.Source == env.SourceModel {
			return tmpl.Text(t.IDs[s.Start:s.End])
		}
	}
	return ""
}

// shapeOTC returns OTC's tool-integrated reward of each row's environment reward, group by group.
func (a *agentLoop) shapeOTC(b *rolloutBatch, main []reward.Score) ([]float64, error) {
	shaped := make([]float64, len(main))
	groups := map[int][]int{}
	var order []int
	for i, g := range b.group {
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], i)
	}
	for _, g := range order {
		rows := groups[g]
		calls := make([]int, len(rows))
		correct := make([]bool, len(rows))
		rphi := make([]float64, len(rows))
		for k, i := range rows {
			calls[k], correct[k], rphi[k] = b.agent.calls[i], main[i].Correct, main[i].Value
		}
		out, err := reward.OTCGroup(promptKey(b, rows[0]), calls, correct, rphi, a.otcCfg, a.otc)
		if err != nil {
			return nil, fmt.Errorf("reward.otc: %w", err)
		}
		for k, i := range rows {
			shaped[i] = out[k]
		}
	}
	return shaped, nil
}

// shapeAdvantages applies ASPO to the prepared batch: a row's advantage is taken from its first
// trained token, shaped, and the difference added to all its trained tokens.
func (a *agentLoop) shapeAdvantages(b *rolloutBatch, adv, mask [][]float64, vals map[string]float64) error {
	if a.aspo.Delta == 0 || adv == nil || b.agent == nil {
		return nil
	}
	n := b.rows()
	base := make([]float64, n)
	hasCall := make([]bool, n)
	first := make([]int, n)
	length := make([]int, n)
	groups := make([]string, n)
	for i := range n {
		for j, m := range mask[i] {
			if m != 0 {
				base[i] = adv[i][j]
				break
			}
		}
		hasCall[i] = b.agent.first[i] >= 0
		first[i] = max(b.agent.first[i], 0)
		length[i] = len(b.resps[i])
		groups[i] = strconv.Itoa(b.group[i])
	}
	shaped, err := reward.ASPOShape(base, b.correct, hasCall, first, length, groups, a.aspo.Delta, a.aspo.K)
	if err != nil {
		return err
	}
	changed, sum := 0.0, 0.0
	for i := range n {
		d := shaped[i] - base[i]
		if d == 0 {
			continue
		}
		changed++
		sum += math.Abs(d)
		for j, m := range mask[i] {
			if m != 0 {
				adv[i][j] += d
			}
		}
	}
	vals["aspo_shaped_frac"] = changed / float64(n)
	if changed > 0 {
		vals["aspo_bias_abs_mean"] = sum / changed
	}
	return nil
}

// agentStats adds the agent metrics of a batch: means per trajectory, tokens by source.
func agentStats(b *rolloutBatch, vals map[string]float64) {
	a := b.agent
	if a == nil || len(a.turns) == 0 {
		return
	}
	n := float64(len(a.turns))
	var turns, calls, errs, model, envTok, prompt float64
	finish := map[string]float64{}
	for i := range a.turns {
		turns += float64(a.turns[i])
		calls += float64(a.calls[i])
		errs += float64(a.errs[i])
		model += float64(a.modelTok[i])
		envTok += float64(a.envTok[i])
		prompt += float64(a.promptTok[i])
		finish[a.finish[i]]++
	}
	vals["turns_per_traj"] = turns / n
	vals["tool_calls_per_traj"] = calls / n
	vals["tool_error_rate"] = 0
	if calls > 0 {
		vals["tool_error_rate"] = errs / calls
	}
	vals["tokens_model"] = model / n
	vals["tokens_env"] = envTok / n
	vals["tokens_prompt"] = prompt / n
	for _, f := range []string{env.FinishDone, env.FinishMaxTurns, env.FinishMaxTokens, env.FinishTruncated, env.FinishEnvError, env.FinishToolTimeout} {
		vals["finish_"+f+"_frac"] = finish[f] / n
	}
}

// evaluate is runner.evaluate in agent mode: greedy and sampled trajectories on the held-out set,
// with the tool metrics.
func (a *agentLoop) evaluate(r *runner, phase string, step int) (float64, error) {
	test := r.prompts.test
	if len(test) == 0 {
		return math.NaN(), nil
	}
	s := r.cfg.Sampling
	vals := map[string]float64{}
	batch := s.PromptsPerStep * s.GroupSize
	for _, mode := range []struct {
		name string
		cfg  rollout.Config
		seed uint64
	}{
		{"", rollout.Config{Temperature: 0, TopP: 1}, 0},
		{"sampled_", rollout.Config{Temperature: s.Temperature, TopK: s.TopK, TopP: s.TopP, MinP: s.MinP}, seedFor(r.cfg.Seed, "eval-"+phase, step)},
	} {
		var all []env.Trajectory
		for lo := 0; lo < len(test); lo += batch {
			trajs, err := a.run(r, test[lo:min(lo+batch, len(test))], mode.cfg, mode.seed+uint64(lo))
			if err != nil {
				return 0, err
			}
			all = append(all, trajs...)
		}
		correct := 0.0
		for _, t := range all {
			if t.Correct {
				correct++
			}
		}
		vals[mode.name+"accuracy"] = correct / float64(len(all))
		for k, v := range env.Stats(all) {
			if k == "turns_per_traj" || k == "tool_calls_per_traj" || k == "tool_error_rate" || k == "tokens_model" || k == "tokens_env" {
				vals[mode.name+k] = v
			}
		}
	}
	vals["pass1_sampled"] = vals["sampled_accuracy"]
	delete(vals, "sampled_accuracy")
	return vals["accuracy"], r.log.Write(metrics.Record{Step: step, Phase: phase, Values: vals})
}

const otcStateKey = "otc_history"

// saveState and loadState carry OTC's per-prompt minimum of tool calls through checkpoints.
func (a *agentLoop) saveState(st *runState) error {
	if a == nil || a.otc == nil {
		return nil
	}
	data, err := json.Marshal(a.otc)
	if err != nil {
		return err
	}
	if st.Extra == nil {
		st.Extra = map[string][]byte{}
	}
	st.Extra[otcStateKey] = data
	return nil
}

func (a *agentLoop) loadState(st runState) error {
	data, ok := st.Extra[otcStateKey]
	if a == nil || a.otc == nil || !ok {
		return nil
	}
	h := reward.NewOTCHistory()
	if err := json.Unmarshal(data, h); err != nil {
		return fmt.Errorf("otc history: %w", err)
	}
	a.otc = h
	return nil
}

// sftTarget is the supervised target after the prompt and which of its ids are trained: the
// reference answer and EOS, or in agent mode with sft_traces calc an expert trace — the policy's
// turns trained, the calculator's observations not.
func (r *runner) sftTarget(ex task.Example, step int) ([]int32, []bool, error) {
	if r.agent == nil || r.cfg.Agent.SFTTraces == "" {
		ans := r.codec.answer(ex)
		mask := make([]bool, len(ans))
		for i := range mask {
			mask[i] = true
		}
		return ans, mask, nil
	}
	expr := strings.TrimSuffix(strings.TrimSpace(ex.Prompt), "=")
	v, err := env.Calculate(expr)
	if err != nil {
		return nil, nil, fmt.Errorf("agent.sft_traces calc: example %s: prompt %q is not an expression: %v", ex.ID, ex.Prompt, err)
	}
	tr, _, err := r.agent.tmpl.Begin(env.Start{Messages: []env.Message{{Role: "user", Content: ex.Prompt}}})
	if err != nil {
		return nil, nil, err
	}
	calls := 1
	if u := float64(seedFor(r.cfg.Seed, "sft-trace/"+ex.Prompt, step)>>11) / (1 << 53); u < r.cfg.Agent.SFTRepeatCall {
		calls = 2
	}
	var ids []int32
	var mask []bool
	add := func(x []int32, trained bool) {
		ids = append(ids, x...)
		for range x {
			mask = append(mask, trained)
		}
	}
	for range calls {
		turn := append(r.codec.tok.Encode("{"+expr+"}"), r.codec.eos)
		add(turn, true)
		obs, err := tr.Continue(turn, []env.Message{{Role: "tool", Content: env.FormatRat(v)}})
		if err != nil {
			return nil, nil, err
		}
		add(obs, false)
	}
	add(r.codec.answer(ex), true)
	return ids, mask, nil
}
