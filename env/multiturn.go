package env

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
)

// Finish reasons of a Trajectory.
const (
	FinishDone        = "done"         // the environment ended the episode
	FinishMaxTurns    = "max_turns"    // Limits.MaxTurns policy turns without an end
	FinishMaxTokens   = "max_tokens"   // the next turn or observation would not fit in Limits.MaxTokens
	FinishTruncated   = "truncated"    // a turn reached the sampler's max_new_tokens without its end token
	FinishEnvError    = "env_error"    // the environment failed (crash, malformed reply, render error)
	FinishToolTimeout = "tool_timeout" // a step ran past Limits.StepTimeout or the trajectory's Limits.ToolTime
)

// Token sources of a Segment.
const (
	SourcePrompt = "prompt"
	SourceModel  = "model"
	SourceEnv    = "env"
)

// Segment is a run of a trajectory's ids from one source: [Start, End).
type Segment struct {
	Start, End int
	Source     string
}

// Trajectory is one multi-turn episode as token ids.
type Trajectory struct {
	Example task.Example
	// IDs is the whole conversation: prompt, then alternating policy turns and environment
	// observations, exactly as the policy saw and produced them.
	IDs []int32
	// Mask is true on the policy's sampled ids: the only ones to train on.
	Mask []bool
	// LogProbs are the behaviour log-probabilities of the sampled ids (0 elsewhere).
	LogProbs []float32
	// PromptLen is the length of the first prompt; the "response" is IDs[PromptLen:].
	PromptLen int
	Segments  []Segment
	// Turns counts policy turns; ToolCalls and ToolErrors sum the environment's counts.
	Turns, ToolCalls, ToolErrors int
	// FirstCall is the response-relative index of the end of the first turn with a tool call
	// (ASPO's p), -1 when the policy never called a tool.
	FirstCall int
	Reward    float64
	Correct   bool
	Finish    string
	Reason    string // why an env_error / tool_timeout / limit ended the trajectory
	ToolTime  time.Duration
	Info      []map[string]any
}

// Response returns the ids and mask after the first prompt.
func (t *Trajectory) Response() ([]int32, []bool) { return t.IDs[t.PromptLen:], t.Mask[t.PromptLen:] }

// Limits bound one trajectory.
type Limits struct {
	MaxTurns  int // policy turns; 0 means 8
	MaxTokens int // ids in the whole trajectory, prompt included; 0 means 4096. A fixed Decoder must hold this many.
	// MaxResponse bounds the ids after the first prompt (policy turns and observations: the
	// trainer's response width); 0 means no bound besides MaxTokens.
	MaxResponse int
	// StepTimeout bounds one Step (all its tool calls); 0 means 30 s.
	StepTimeout time.Duration
	// ResetTimeout bounds starting an environment and its Reset (an interpreter starting on a
	// busy machine); 0 means 60 s.
	ResetTimeout time.Duration
	// ToolTime bounds the environment's time over the whole trajectory; 0 means 120 s.
	ToolTime time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxTurns <= 0 {
		l.MaxTurns = 8
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = 4096
	}
	if l.StepTimeout <= 0 {
		l.StepTimeout = 30 * time.Second
	}
	if l.ToolTime <= 0 {
		l.ToolTime = 120 * time.Second
	}
	if l.ResetTimeout <= 0 {
		l.ResetTimeout = 60 * time.Second
	}
	return l
}

// room is how many more ids the trajectory may take.
func (t *Trajectory) room(l Limits) int {
	n := l.MaxTokens - len(t.IDs)
	if l.MaxResponse > 0 {
		n = min(n, l.MaxResponse-(len(t.IDs)-t.PromptLen))
	}
	return n
}

// Runner samples multi-turn trajectories: every round, the turns of all unfinished trajectories
// are sampled in one batch, then their environments are stepped concurrently.
type Runner struct {
	// Decoder is one decoder for every round; it must hold Limits.MaxTokens ids per row. When
	// Decoders is set it is used instead, once per round, sized for that round's longest context
	// plus the turn's token limit (how a KV-cache decoder of fixed capacity is used).
	Decoder  rollout.Decoder
	Decoders func(rows, maxLen int) (rollout.Decoder, error)
	Template Template
	Envs     Factory
	// Sampling is the per-turn sampler configuration; MaxNewTokens bounds one turn and the
	// template's stop tokens are added to StopTokens.
	Sampling rollout.Config
	Limits   Limits
	// Parallel bounds concurrent environment calls; 0 means 32.
	Parallel int
	// Log, when set, receives one line per trajectory that ends by a fault (env_error, tool_timeout).
	Log func(line string)
	// OnTurn, when set, sees every batch of sampled turns as the sampler returned them: rows[k] is
	// the trajectory of comps[k] (for streaming, logging and tests).
	OnTurn func(rows []int, comps []rollout.Completion)
}

// Run samples one trajectory per example. Only a decoder failure is an error; environment faults
// end their own trajectory (Finish, Reason) and the others go on.
func (r *Runner) Run(examples []task.Example, seed uint64) ([]Trajectory, error) {
	if r.Decoder == nil && r.Decoders == nil || r.Template == nil || r.Envs == nil {
		return nil, errors.New("env: runner needs a decoder, a template and an environment factory")
	}
	lim := r.Limits.withDefaults()
	scfg := r.Sampling
	for _, s := range r.Template.StopTokens() {
		if !containsID(scfg.StopTokens, s) {
			scfg.StopTokens = append(scfg.StopTokens, s)
		}
	}
	if err := scfg.Validate(); err != nil {
		return nil, err
	}
	n := len(examples)
	trajs := make([]Trajectory, n)
	envs := make([]Environment, n)
	scripts := make([]Transcript, n)
	defer func() { r.parallel(n, func(i int) { closeEnv(envs[i]) }) }()

	r.parallel(n, func(i int) {
		t := &trajs[i]
		t.Example, t.FirstCall = examples[i], -1
		e, err := r.Envs(i)
		if err != nil {
			r.end(i, t, FinishEnvError, fmt.Sprintf("start: %v", err))
			return
		}
		envs[i] = e
		ctx, cancel := context.WithTimeout(context.Background(), lim.ResetTimeout)
		start, err := e.Reset(ctx, examples[i])
		cancel()
		if err != nil {
			r.end(i, t, faultFinish(err), fmt.Sprintf("reset: %v", err))
			return
		}
		tr, ids, err := r.Template.Begin(start)
		if err != nil {
			r.end(i, t, FinishEnvError, fmt.Sprintf("render prompt: %v", err))
			return
		}
		if len(ids) == 0 || len(ids) >= lim.MaxTokens {
			r.end(i, t, FinishMaxTokens, fmt.Sprintf("prompt has %d ids, max_tokens is %d", len(ids), lim.MaxTokens))
			return
		}
		scripts[i] = tr
		t.append(ids, nil, SourcePrompt)
		t.PromptLen = len(ids)
	})

	for round := 0; ; round++ {
		var active []int
		room, longest := 0, 0
		for i := range trajs {
			if trajs[i].Finish == "" {
				active = append(active, i)
				room = max(room, trajs[i].room(lim))
				longest = max(longest, len(trajs[i].IDs))
			}
		}
		if len(active) == 0 {
			return trajs, nil
		}
		ctxs := make([][]int32, len(active))
		for k, i := range active {
			ctxs[k] = trajs[i].IDs
		}
		cfg := scfg
		cfg.MaxNewTokens = min(cfg.MaxNewTokens, room)
		var err error
		dec := r.Decoder
		if r.Decoders != nil {
			if dec, err = r.Decoders(len(ctxs), longest+cfg.MaxNewTokens); err != nil {
				return nil, fmt.Errorf("env: turn %d: %w", round+1, err)
			}
		}
		comps, err := rollout.Sample(dec, ctxs, cfg, roundSeed(seed, round))
		if err != nil {
			return nil, fmt.Errorf("env: turn %d: %w", round+1, err)
		}
		if r.OnTurn != nil {
			r.OnTurn(active, comps)
		}
		var step []int
		turns := make([][]int32, n)
		for k, i := range active {
			t, c := &trajs[i], comps[k]
			toks, lps := c.Tokens, c.LogProbs
			keep := t.room(lim)
			cut := len(toks) > keep || c.Finish == rollout.FinishLength && len(toks) == keep
			if len(toks) > keep {
				toks, lps = toks[:keep], lps[:keep]
			}
			turns[i] = toks
			t.append(toks, lps, SourceModel)
			t.Turns++
			switch {
			case cut:
				r.end(i, t, FinishMaxTokens, fmt.Sprintf("turn %d reached the token limit (max_tokens %d, max_response %d)", t.Turns, lim.MaxTokens, lim.MaxResponse))
			case c.Finish == rollout.FinishLength:
				r.end(i, t, FinishTruncated, fmt.Sprintf("turn %d reached max_new_tokens %d without an end token", t.Turns, cfg.MaxNewTokens))
			default:
				step = append(step, i)
			}
		}
		r.parallel(len(step), func(k int) {
			i := step[k]
			r.stepOne(i, &trajs[i], envs[i], scripts[i], turns[i], lim)
		})
	}
}

// stepOne shows the policy's turn to the environment and appends its answer.
func (r *Runner) stepOne(i int, t *Trajectory, e Environment, tr Transcript, turn []int32, lim Limits) {
	text := r.Template.Text(turn)
	calls, perr := ParseToolCalls(r.Template.Format(), text)
	in := Turn{Text: text, Calls: calls}
	if perr != nil {
		in.ParseError = perr.Error()
	}
	if (len(calls) > 0 || perr != nil) && t.FirstCall < 0 {
		t.FirstCall = len(t.IDs) - t.PromptLen
	}
	left := lim.ToolTime - t.ToolTime
	if left <= 0 {
		r.end(i, t, FinishToolTimeout, fmt.Sprintf("tool time %v used up", lim.ToolTime))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(lim.StepTimeout, left))
	defer cancel()
	t0 := time.Now()
	res, err := e.Step(ctx, in)
	t.ToolTime += time.Since(t0)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		r.end(i, t, faultFinish(err), fmt.Sprintf("turn %d: %v", t.Turns, err))
		return
	}
	t.Reward += res.Reward
	t.ToolCalls += res.ToolCalls
	t.ToolErrors += res.ToolErrors
	if res.Info != nil {
		t.Info = append(t.Info, res.Info)
	}
	if res.Done {
		t.Correct = res.Correct
		t.Finish = FinishDone
		return
	}
	if t.Turns >= lim.MaxTurns {
		r.end(i, t, FinishMaxTurns, fmt.Sprintf("%d turns without an end", t.Turns))
		return
	}
	ids, err := tr.Continue(turn, res.Messages)
	if err != nil {
		r.end(i, t, FinishEnvError, fmt.Sprintf("turn %d: render observation: %v", t.Turns, err))
		return
	}
	if len(ids) >= t.room(lim) {
		r.end(i, t, FinishMaxTokens, fmt.Sprintf("observation of turn %d (%d ids) leaves no room for another turn (max_tokens %d, max_response %d)", t.Turns, len(ids), lim.MaxTokens, lim.MaxResponse))
		return
	}
	t.append(ids, nil, SourceEnv)
}

func (t *Trajectory) append(ids []int32, logps []float32, source string) {
	if len(ids) == 0 {
		return
	}
	start := len(t.IDs)
	t.IDs = append(t.IDs, ids...)
	model := source == SourceModel
	for k := range ids {
		t.Mask = append(t.Mask, model)
		lp := float32(0)
		if model {
			lp = logps[k]
		}
		t.LogProbs = append(t.LogProbs, lp)
	}
	t.Segments = append(t.Segments, Segment{Start: start, End: len(t.IDs), Source: source})
}

func (r *Runner) end(i int, t *Trajectory, finish, reason string) {
	t.Finish, t.Reason = finish, reason
	if r.Log != nil && (finish == FinishEnvError || finish == FinishToolTimeout) { // limits are routine: Finish and the metrics count them
		r.Log(fmt.Sprintf("trajectory %d (example %s): %s: %s", i, t.Example.ID, finish, reason))
	}
}

func faultFinish(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return FinishToolTimeout
	}
	return FinishEnvError
}

func closeEnv(e Environment) {
	if e != nil {
		_ = e.Close()
	}
}

// parallel runs f(0..n-1) on at most r.Parallel goroutines.
func (r *Runner) parallel(n int, f func(i int)) {
	workers := r.Parallel
	if workers <= 0 {
		workers = 32
	}
	workers = min(workers, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func roundSeed(seed uint64, round int) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d", seed, round)
	return h.Sum64()
}

// Stats are the agent metrics of a batch of trajectories (means per trajectory unless noted).
func Stats(trajs []Trajectory) map[string]float64 {
	out := map[string]float64{}
	if len(trajs) == 0 {
		return out
	}
	var turns, calls, errs, model, envTok, prompt float64
	finish := map[string]float64{}
	for _, t := range trajs {
		turns += float64(t.Turns)
		calls += float64(t.ToolCalls)
		errs += float64(t.ToolErrors)
		for _, s := range t.Segments {
			switch s.Source {
			case SourceModel:
				model += float64(s.End - s.Start)
			case SourceEnv:
				envTok += float64(s.End - s.Start)
			case SourcePrompt:
				prompt += float64(s.End - s.Start)
			}
		}
		finish[t.Finish]++
	}
	n := float64(len(trajs))
	out["turns_per_traj"] = turns / n
	out["tool_calls_per_traj"] = calls / n
	out["tool_error_rate"] = 0
	if calls > 0 {
		out["tool_error_rate"] = errs / calls
	}
	out["tokens_model"] = model / n
	out["tokens_env"] = envTok / n
	out["tokens_prompt"] = prompt / n
	for k, v := range finish {
		out["finish_"+k+"_frac"] = v / n
	}
	return out
}
