// Package train runs post-training: an optional supervised warm-up, then the RL loop (sample G
// responses per prompt, verify, compute advantages, PPO-style epochs over mini-batches with the chosen
// objective, AdamW), with periodic evaluation, metrics, plots and resumable checkpoints.
//
// It implements no algorithm's math: advantages, ratios, clipping and losses come from package
// objective; sampling from rollout; rewards from reward; the model and optimizer from model.
package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/polo-rl/polo/metrics"
	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/objective"
	"github.com/polo-rl/polo/reward"
	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
)

// Options are run-time choices that are not part of the configuration.
type Options struct {
	Resume   bool      // continue cfg.RunDir from its latest checkpoint
	Progress io.Writer // progress bar destination; nil = none
	Log      io.Writer // one-line notices (reward failures, checkpoints); nil = discard
	// Verifier, when set, scores responses instead of the configured reward.verifier (a custom reward
	// function from Go code). It gets the same protection: a panic or a hang scores 0 with a reason.
	Verifier reward.Verifier

	// observe, when set (tests), sees every objective batch the trainer builds: "loss" before each
	// Loss call, "after" before AfterBatch.
	observe func(stage string, b *objective.Batch)
	// observeBestOfN, when set (tests), sees every sft.source best_of_n_q step: the prompts, their
	// candidates and the imitated candidate of each (-1: none).
	observeBestOfN func(step int, prompts [][]int32, cands [][][]int32, chosen []int)
}

// Summary is what a finished run reports.
type Summary struct {
	RunDir        string
	AccuracyStart float64 // held-out greedy accuracy of the initial policy
	AccuracySFT   float64 // after the SFT warm-up (= start when there is none)
	AccuracyRL    float64 // after RL
	Pass1Start    float64 // held-out accuracy of one temperature sample per prompt (what RL optimises): start
	Pass1SFT      float64 // … after SFT
	Pass1RL       float64 // … after RL
	RewardFirst   float64 // mean reward of the first RL step
	RewardLast    float64 // mean reward over the last 10% of RL steps
	WallSeconds   float64
	RolloutS      float64 // mean seconds per RL step in sampling
	RewardS       float64 // … in verification
	TrainS        float64 // … in log-prob passes and optimizer steps
	Plots         bool    // RUN_DIR/plots/*.png were written (log.plots)
	Graphs        int     // graphs compiled in this process during the run (RUN_DIR/compile.json)
	CompileS      float64 // seconds of the calls that compiled them
}

// runner holds one run's live state.
type runner struct {
	cfg        Config
	opts       Options
	dir        string
	ckptDir    string
	codec      *codec
	prompts    *promptSource
	verifier   reward.Verifier
	rewarder   *rewarder
	obj        objective.Objective
	pairObj    objective.PairObjective // preference mode
	pairData   []pair                  // preference.path rows (nil = synthetic pairs)
	offline    []offlineGroup          // rl.offline_path groups (offline.go)
	needRef    bool
	policy     *model.Model
	ref        *model.Model
	trainer    *model.Trainer
	log        *metrics.Log
	samples    *metrics.SamplesLog // log.samples (samples.go)
	state      runState
	driftMem   map[string]driftEntry // per prompt, the last visit (objectives declaring "drift")
	head       *model.ValueHead      // the critic of actor-critic objectives (critic.go)
	segStats   segmentStats          // segment_spo's extra sampling in the current step (segments.go)
	dpo        *model.Model          // reward.dpo_model: RTO's token rewards (rto.go)
	vm         *valueModel           // rl.critic_model: a separate critic trunk (critic.go)
	maskPolicy *model.Model          // nlpo's masking policy (nlpo.go)
	bar        *progress
	start      time.Time
	skips      int // optimizer steps dropped as non-finite in a row (finite.go)
	skipped    int // … in all
	// rollout.engine remote: the servers and the weights they hold (remote.go)
	remote *remoteEngine

	agent *agentLoop // agent mode (agent.go); nil otherwise
	bon   *bestOfN   // sft.source best_of_n_q (bestofn.go); loaded at its first step
}

// Run trains according to cfg. With opts.Resume it continues cfg.RunDir from its latest checkpoint.
func Run(cfg Config, opts Options) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	lock, err := lockRunDir(cfg.RunDir) // one process per run folder, for the run's life
	if err != nil {
		return Summary{}, err
	}
	defer lock.release()
	r := &runner{cfg: cfg, opts: opts, dir: cfg.RunDir, ckptDir: filepath.Join(cfg.RunDir, "checkpoints"), start: time.Now()}
	compiled := model.GlobalCompileStats()
	if err := r.setup(); err != nil {
		return Summary{}, err
	}
	defer r.log.Close()
	defer r.closeDashLogs()
	if err := r.sft(); err != nil {
		return Summary{}, err
	}
	if err := r.rl(); err != nil {
		return Summary{}, err
	}
	r.bar.finish()
	records, err := metrics.Read(filepath.Join(r.dir, "metrics.jsonl"))
	if err != nil {
		return Summary{}, err
	}
	sum := summarize(records)
	sum.RunDir = r.dir
	sum.WallSeconds = time.Since(r.start).Seconds()
	if err := writeCompileStats(r.dir, compiled, &sum); err != nil {
		return sum, err
	}
	if r.cfg.Log.Plots {
		if err := writePlots(filepath.Join(r.dir, "plots"), records); err != nil {
			return sum, err
		}
		sum.Plots = true
	}
	return sum, nil
}

// Resume continues the run in dir from its latest complete checkpoint, with the configuration it was
// started with (dir/config.yaml).
func Resume(dir string, opts Options) (Summary, error) {
	cfg, err := LoadConfig(filepath.Join(dir, "config.yaml"), nil)
	if err != nil {
		return Summary{}, fmt.Errorf("resume %s: %w", dir, err)
	}
	cfg.RunDir = dir
	opts.Resume = true
	return Run(cfg, opts)
}

func (r *runner) setup() error {
	var err error
	if r.prompts, err = newPromptSource(r.cfg); err != nil {
		return err
	}
	if n := len(r.prompts.skipped); n > 0 {
		fmt.Fprintf(r.opts.Log, "dataset %s: skipped %d malformed rows (task.on_error: skip); the first: %v\n", r.cfg.Task.Path, n, r.prompts.skipped[0])
	}
	if r.codec, err = newCodec(r.cfg, r.prompts.alphabet+agentAlphabet(r.cfg, r.prompts.alphabet)); err != nil {
		return err
	}
	if !r.opts.Resume { // (a resume loads its own checkpoint, not model.path)
		if err := checkModelVocab(r.cfg, r.codec.tok.VocabSize()); err != nil {
			return err
		}
	}
	v := r.opts.Verifier
	if v == nil {
		if v, err = reward.NewVerifier(r.cfg.Reward.Verifier, r.cfg.Reward.Options); err != nil {
			return err
		}
	}
	r.verifier = reward.Safe(v, time.Duration(r.cfg.Reward.Timeout*float64(time.Second)))
	if r.rewarder, err = newRewarder(r.cfg); err != nil {
		return err
	}
	if r.agent, err = newAgentLoop(r); err != nil { // agent mode (agent.go)
		return err
	}
	objs, err := newObjective(r.cfg)
	if err != nil {
		return err
	}
	// The run records every parameter of its objective, not only the overrides.
	if r.cfg.Algo.Set, err = objective.Resolve(r.cfg.Algo.Name, r.cfg.Algo.Set); err != nil {
		return err
	}
	r.obj, r.pairObj, r.needRef = objs.token, objs.pair, objs.needRef
	if r.cfg.RL.OfflinePath != "" {
		if r.offline, err = loadOfflineGroups(r.cfg.RL.OfflinePath); err != nil {
			return err
		}
	}
	if (r.pairObj != nil || r.cfg.Reward.DPOSteps > 0) && r.cfg.Preference.Path != "" {
		if r.pairData, err = loadPairs(r.cfg.Preference.Path); err != nil {
			return err
		}
	}
	metricsPath := filepath.Join(r.dir, "metrics.jsonl")
	if r.opts.Resume {
		if err := r.restore(metricsPath); err != nil {
			return err
		}
	} else {
		if _, err := os.Stat(filepath.Join(r.ckptDir, latestFile)); err == nil {
			return fmt.Errorf("run dir %s already holds a run; resume it with --resume %s or set run_dir to a new folder", r.dir, r.dir)
		}
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return fmt.Errorf("run dir: %w", err)
		}
		os.Remove(metricsPath) // a previous attempt that never checkpointed
		if err := writeFileAtomic(filepath.Join(r.dir, "config.yaml"), r.cfg.YAML()); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
		if r.policy, err = newPolicy(r.cfg, r.codec.tok.VocabSize()); err != nil {
			return err
		}
		if err := r.startLoRA("all"); err != nil {
			return err
		}
	}
	if err := r.policy.SetCompute(r.cfg.Model.Compute); err != nil {
		return fmt.Errorf("model.compute: %w", err)
	}
	if r.log, err = metrics.Open(metricsPath); err != nil {
		return err
	}
	if err := r.openDashLogs(); err != nil {
		return err
	}
	bar := r.opts.Progress
	if !r.cfg.Log.Progress { // log.progress: false silences the bar whatever the caller passed
		bar = nil
	}
	r.bar = newProgress(bar, r.cfg.SFT.Steps+r.cfg.RL.Steps, r.doneSteps())
	return nil
}

func (r *runner) doneSteps() int {
	switch r.state.Phase {
	case "sft":
		return r.state.Step
	case "rl":
		return r.cfg.SFT.Steps + r.state.Step
	}
	return 0
}

// restore loads the newest usable checkpoint (resume.go) and trims metrics written after it.
func (r *runner) restore(metricsPath string) error {
	removeTemporaries(r.dir, r.ckptDir) // leftovers of a killed run (we hold the run's lock)
	paths, err := resumeCandidates(r.ckptDir)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	var path string
	for i, p := range paths {
		r.state = runState{}
		if err = r.restoreFrom(p); err == nil {
			path = p
			break
		}
		if i+1 < len(paths) {
			fmt.Fprintf(r.opts.Log, "resume: checkpoint %s is unusable (%v); falling back to %s\n", filepath.Base(p), err, filepath.Base(paths[i+1]))
		}
	}
	if err != nil {
		return err
	}
	// Drop metrics of steps the checkpoint does not contain: the resumed run redoes them.
	records, err := metrics.Read(metricsPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	kept := records[:0]
	for _, rec := range records {
		if r.covered(rec) {
			kept = append(kept, rec)
		}
	}
	if r.state.Phase == "rl" && r.state.Step == r.cfg.RL.Steps {
		fmt.Fprintf(r.opts.Log, "run %s is already complete (rl step %d of %d in %s); nothing to train, the summary is from its metrics\n",
			r.dir, r.state.Step, r.cfg.RL.Steps, filepath.Base(path))
	} else {
		fmt.Fprintf(r.opts.Log, "resuming %s from %s (%s step %d)\n", r.dir, filepath.Base(path), r.state.Phase, r.state.Step)
	}
	return metrics.Rewrite(metricsPath, kept)
}

// restoreFrom loads one checkpoint: state, weights, optimizer moments, reward and objective state.
func (r *runner) restoreFrom(path string) error {
	var err error
	if err := readJSONFile(filepath.Join(path, "state.json"), &r.state); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if r.state.Phase != "sft" && r.state.Phase != "rl" {
		return fmt.Errorf("resume: %s: unknown phase %q", filepath.Join(path, "state.json"), r.state.Phase)
	}
	if total := r.phaseSteps(r.state.Phase); r.state.Step < 0 || r.state.Step > total {
		return fmt.Errorf("resume: %s: %s step %d is outside 0..%s.steps = %d of config.yaml; the checkpoint does not belong to this run",
			filepath.Join(path, "state.json"), r.state.Phase, r.state.Step, r.state.Phase, total)
	}
	if r.policy, err = r.loadPolicy(filepath.Join(path, "model")); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if r.trainer, err = r.newTrainer(r.state.Phase); err != nil {
		return err
	}
	if err := r.trainer.LoadState(filepath.Join(path, "optimizer.bin")); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if err := r.rewarder.loadState(r.state); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if err := r.agent.loadState(r.state); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if err := r.loadDrift(r.state); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if err := r.loadValueModel(path); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if err := r.loadMaskPolicy(path); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if r.state.Phase == "rl" && r.cfg.Reward.DPOSteps > 0 { // rto.go: the DPO phase's model
		if r.dpo, err = model.Load(filepath.Join(r.ckptDir, dpoModelFolder, "model")); err != nil {
			return fmt.Errorf("resume: DPO model of reward.dpo_steps: %w", err)
		}
	}
	if err := r.loadCritic(r.state); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if s, ok := r.obj.(objective.Stateful); ok && len(r.state.ObjectiveState) > 0 {
		if err := s.UnmarshalState(r.state.ObjectiveState); err != nil {
			return fmt.Errorf("resume: objective state: %w", err)
		}
	}
	if r.state.Phase == "rl" && r.needRef && r.policy.HasAdapter() && r.cfg.Distill.Teacher == "" {
		r.ref = r.policy.Base() // LoRA: the reference is the frozen base
	} else if r.state.Phase == "rl" && r.needRef {
		if r.ref, err = model.Load(filepath.Join(r.ckptDir, "reference", "model")); err != nil {
			return fmt.Errorf("resume: reference model: %w", err)
		}
		if err := r.ref.SetCompute(r.cfg.Model.Compute); err != nil {
			return fmt.Errorf("resume: reference model: %w", err)
		}
	}
	return nil
}

// phaseSteps is the configured number of steps of a phase ("sft" or "rl").
func (r *runner) phaseSteps(phase string) int {
	if phase == "sft" {
		return r.cfg.SFT.Steps
	}
	return r.cfg.RL.Steps
}

// covered says whether a metrics record belongs to work the restored checkpoint already contains.
func (r *runner) covered(rec metrics.Record) bool {
	phaseOrder := map[string]int{"eval-start": 0, "sft": 0, "sft-eval": 0, "eval-sft": 1, "rl": 2, "eval": 2}
	cur := phaseOrder[r.state.Phase]
	p := phaseOrder[rec.Phase]
	if rec.Phase == "eval-sft" || rec.Phase == "dpo" { // both precede rl-000000
		return r.state.Phase == "rl"
	}
	if p != cur {
		return p < cur
	}
	return rec.Step <= r.state.Step
}

func (r *runner) optimConfig(phase string) model.OptimConfig {
	o := r.cfg.Optim
	lr := o.LR
	if phase == "sft" {
		lr = r.cfg.SFT.LR
	}
	return model.OptimConfig{LR: lr, Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps, WeightDecay: o.WeightDecay, ClipNorm: o.ClipNorm}
}

// checkpoint writes the current state; phase/step name it.
func (r *runner) checkpoint() error {
	if s, ok := r.obj.(objective.Stateful); ok {
		data, err := s.MarshalState()
		if err != nil {
			return fmt.Errorf("objective state: %w", err)
		}
		r.state.ObjectiveState = data
	}
	if err := r.rewarder.saveState(&r.state); err != nil {
		return err
	}
	if err := r.agent.saveState(&r.state); err != nil {
		return err
	}
	if err := r.saveDrift(&r.state); err != nil {
		return err
	}
	if err := r.saveCritic(&r.state); err != nil {
		return err
	}
	name := checkpointName(r.state.Phase, r.state.Step)
	err := writeCheckpoint(r.ckptDir, name, func(tmp string) error {
		if err := r.savePolicy(filepath.Join(tmp, "model")); err != nil {
			return err
		}
		if err := r.codec.save(filepath.Join(tmp, "model")); err != nil {
			return err
		}
		if err := r.trainer.SaveState(filepath.Join(tmp, "optimizer.bin")); err != nil {
			return err
		}
		if err := r.saveValueModel(tmp); err != nil { // critic.go
			return err
		}
		if err := r.saveMaskPolicy(tmp); err != nil { // nlpo.go
			return err
		}
		return writeJSONFile(filepath.Join(tmp, "state.json"), r.state)
	})
	if err != nil {
		return err
	}
	return pruneCheckpoints(r.ckptDir, r.cfg.Ckpt.Keep)
}

func (r *runner) dueCheckpoint(step, last int) bool {
	return step == last || (r.cfg.Ckpt.Every > 0 && step%r.cfg.Ckpt.Every == 0)
}

// ---- SFT warm-up ----------------------------------------------------------------------------------

func (r *runner) sft() error {
	if r.state.Phase == "rl" {
		return nil
	}
	total := r.cfg.SFT.Steps
	if r.state.Phase == "" {
		if _, err := r.evaluate("eval-start", 0); err != nil {
			return err
		}
		if total == 0 {
			return nil
		}
		var err2 error
		if r.trainer, err2 = r.newTrainer("sft"); err2 != nil {
			return err2
		}
		r.state = runState{Phase: "sft"}
	}
	for step := r.state.Step + 1; step <= total; step++ {
		exs, err := r.prompts.draw("sft", step, r.cfg.SFT.BatchSize)
		if err != nil {
			return err
		}
		var prompts, answers [][]int32
		var trained [][]bool  // per answer token: in the loss (agent traces leave observations out)
		var rowCoef []float64 // per row, the coefficient of its trained tokens (nil: −1/tokens)
		var extra map[string]float64
		if r.cfg.SFT.Source == sourceBestOfNQ { // Digi-Q policy extraction (bestofn.go)
			bs, err := r.bestOfNTargets(exs, step)
			if err != nil {
				return err
			}
			prompts, answers, rowCoef, extra = bs.prompts, bs.answers, bs.coef, bs.vals
			for _, a := range answers {
				m := make([]bool, len(a))
				for i := range m {
					m[i] = true
				}
				trained = append(trained, m)
			}
			exs = nil
		}
		for _, ex := range exs {
			p, err := r.codec.prompt(ex)
			if err != nil {
				return err
			}
			a, m, err := r.sftTarget(ex, step) // agent.go
			if err != nil {
				return err
			}
			prompts = append(prompts, p)
			answers = append(answers, a)
			trained = append(trained, m)
		}
		ids, mask := sequences(prompts, answers, r.codec.pad)
		nTok := 0
		for _, m := range trained {
			for _, in := range m {
				if in {
					nTok++
				}
			}
		}
		coef := make([][]float32, len(ids))
		for b := range ids {
			coef[b] = make([]float32, len(ids[b])-1)
			for j := range answers[b] {
				switch {
				case !trained[b][j]:
				case rowCoef != nil:
					coef[b][len(prompts[b])-1+j] = float32(rowCoef[b])
				default:
					coef[b][len(prompts[b])-1+j] = float32(-1 / float64(nTok))
				}
			}
		}
		t0 := time.Now()
		loss := 0.0
		switch {
		case len(ids) == 0: // every prompt gated out (best_of_n_q): nothing to imitate this step
		case r.cfg.SFT.OTR.K > 0: // One-Token Rollout instead of cross-entropy (otr.go)
			if loss, err = r.otrAccumulate(step, ids, mask, prompts, answers, nTok); err != nil {
				return err
			}
		default:
			logp, err := r.accumulate(ids, mask, coef, nil)
			if err != nil {
				return err
			}
			for b := range logp {
				for t, c := range coef[b] {
					loss += float64(c) * float64(logp[b][t])
				}
			}
		}
		lr := learningRate(r.cfg.Optim, r.cfg.SFT.LR, step, total)
		gradNorm, applied := math.NaN(), false
		if applied, err = r.finiteLoss("sft", step, loss); err != nil {
			return err
		}
		if applied && len(ids) > 0 {
			if gradNorm, applied, err = r.applyStep("sft", step, lr); err != nil {
				return err
			}
		}
		r.state.Step = step
		vals := map[string]float64{"loss": loss, "grad_norm": gradNorm, "lr": lr, "train_s": time.Since(t0).Seconds()}
		if !applied || len(ids) == 0 {
			vals["skipped"] = 1
			delete(vals, "grad_norm")
		}
		for k, v := range extra {
			vals[k] = v
		}
		if err := r.log.Write(metrics.Record{Step: step, Phase: "sft", Values: vals}); err != nil {
			return err
		}
		desc := fmt.Sprintf("sft %d/%d loss %.3f", step, total, loss)
		// The last SFT step is evaluated as "eval-sft" when RL starts.
		evalNow := r.cfg.Eval.Every > 0 && step%r.cfg.Eval.Every == 0 && step < total
		if err := r.endStep("sft-eval", step, total, desc, evalNow); err != nil {
			return err
		}
	}
	return nil
}

// endStep finishes a step of either phase: a held-out evaluation when due, the progress bar, and a
// checkpoint when due.
func (r *runner) endStep(evalPhase string, step, total int, desc string, evalNow bool) error {
	if evalNow {
		acc, err := r.evaluate(evalPhase, step)
		if err != nil {
			return err
		}
		desc += fmt.Sprintf(" held-out %.3f", acc)
	}
	r.bar.advance(desc)
	if r.dueCheckpoint(step, total) {
		return r.checkpoint()
	}
	return nil
}

// accumulate runs forward/backward in micro-batches of rl.micro_batch_size rows and returns the
// forward log-probs of all rows.
func (r *runner) accumulate(ids, mask [][]int32, coefLogp, coefEnt [][]float32) ([][]float32, error) {
	size := r.cfg.RL.MicroBatchSize
	if size <= 0 || size > len(ids) {
		size = len(ids)
	}
	var all [][]float32
	for lo := 0; lo < len(ids); lo += size {
		hi := min(lo+size, len(ids))
		var ce [][]float32
		if coefEnt != nil {
			ce = coefEnt[lo:hi]
		}
		logp, _, err := r.trainer.Accumulate(ids[lo:hi], mask[lo:hi], coefLogp[lo:hi], ce)
		if err != nil {
			return nil, err
		}
		all = append(all, logp...)
	}
	return all, nil
}

// sequences concatenates prompt and continuation ids per row and right-pads to a common width.
func sequences(prompts, conts [][]int32, pad int32) (ids, mask [][]int32) {
	width := 0
	for i := range prompts {
		width = max(width, len(prompts[i])+len(conts[i]))
	}
	ids = make([][]int32, len(prompts))
	mask = make([][]int32, len(prompts))
	for i := range prompts {
		row := make([]int32, width)
		m := make([]int32, width)
		n := copy(row, prompts[i])
		n += copy(row[n:], conts[i])
		for j := range width {
			if j < n {
				m[j] = 1
			} else {
				row[j] = pad
			}
		}
		ids[i], mask[i] = row, m
	}
	return ids, mask
}

// ---- evaluation -----------------------------------------------------------------------------------

// evaluate scores the held-out prompts twice: greedy decoding ("accuracy") and one sample each at
// the training temperature ("pass1_sampled", the quantity RL optimises), then logs the record under
// phase/step and returns greedy accuracy.
func (r *runner) evaluate(phase string, step int) (float64, error) {
	if r.agent != nil {
		return r.agent.evaluate(r, phase, step)
	}
	test := r.prompts.test
	if len(test) == 0 {
		return math.NaN(), nil
	}
	s := r.cfg.Sampling
	greedy := rollout.Config{Temperature: 0, TopP: 1, MaxNewTokens: s.MaxNewTokens, StopTokens: []int32{r.codec.eos}}
	sampled := rollout.Config{Temperature: s.Temperature, TopK: s.TopK, TopP: s.TopP, MinP: s.MinP, MaxNewTokens: s.MaxNewTokens, StopTokens: []int32{r.codec.eos}}
	acc, meanLen, err := r.heldOut(greedy, 0, phase, step, "eval-greedy")
	if err != nil {
		return 0, err
	}
	pass1, _, err := r.heldOut(sampled, seedFor(r.cfg.Seed, "eval-"+phase, step), phase, step, "eval-sampled")
	if err != nil {
		return 0, err
	}
	vals := map[string]float64{"accuracy": acc, "pass1_sampled": pass1, "response_len": meanLen}
	return acc, r.log.Write(metrics.Record{Step: step, Phase: phase, Values: vals})
}

// heldOut samples one response per held-out prompt and returns the fraction correct and the mean
// response length; the first answers go to the samples log under phase, step and kind.
func (r *runner) heldOut(scfg rollout.Config, seed uint64, phase string, step int, kind string) (acc, meanLen float64, err error) {
	test := r.prompts.test
	batch := r.cfg.Sampling.PromptsPerStep * r.cfg.Sampling.GroupSize
	correct, tokens := 0, 0
	for lo := 0; lo < len(test); lo += batch {
		exs := test[lo:min(lo+batch, len(test))]
		prompts := make([][]int32, len(exs))
		for i, ex := range exs {
			if prompts[i], err = r.codec.prompt(ex); err != nil {
				return 0, 0, err
			}
		}
		comps, err := r.sampleEval(prompts, scfg, seed+uint64(lo))
		if err != nil {
			return 0, 0, err
		}
		scores := make([]reward.Score, len(comps))
		for i, c := range comps {
			tokens += len(c.Tokens)
			if scores[i] = r.score(r.codec.text(c.Tokens), exs[i]); scores[i].Correct {
				correct++
			}
		}
		if lo == 0 {
			if err := r.logHeldOut(phase, step, kind, prompts, comps, scores); err != nil {
				return 0, 0, err
			}
		}
	}
	return float64(correct) / float64(len(test)), float64(tokens) / float64(len(test)), nil
}

// sample runs the sampler on a fresh KV-cache decoder sized for these prompts.
func (r *runner) sample(prompts [][]int32, scfg rollout.Config, seed uint64) ([]rollout.Completion, error) {
	maxPrompt := 0
	for _, p := range prompts {
		maxPrompt = max(maxPrompt, len(p))
	}
	dec, err := r.policy.NewDecoder(len(prompts), maxPrompt+scfg.MaxNewTokens)
	if err != nil {
		return nil, err
	}
	return rollout.Sample(dec, prompts, scfg, seed)
}

// score verifies one response with the main verifier.
func (r *runner) score(text string, ex task.Example) reward.Score {
	return r.scoreWith(r.verifier, "reward", text, ex)
}

// scoreWith runs a (Safe-wrapped) verifier: one that panics, hangs or returns a non-finite value
// scores 0, and the reason is logged under name.
func (r *runner) scoreWith(v reward.Verifier, name, text string, ex task.Example) reward.Score {
	s := v.Verify(text, ex)
	if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		s = reward.Score{Reason: fmt.Sprintf("verifier returned %v", s.Value)}
	}
	if strings.HasPrefix(s.Reason, "verifier ") {
		fmt.Fprintf(r.opts.Log, "%s: example %s: %s (scored 0)\n", name, ex.ID, s.Reason)
	}
	return s
}

// writeCompileStats writes RUN_DIR/compile.json: the graphs this run compiled (since before, the
// process-wide statistics at its start), with the seconds of the calls that compiled them.
func writeCompileStats(dir string, before model.CompileStats, sum *Summary) error {
	d := model.CompileSince(before)
	sum.Graphs, sum.CompileS = d.Graphs, d.Seconds
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "compile.json"), append(data, '\n'))
}
