package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/polo-rl/polo/internal/avxstate"
	"github.com/polo-rl/polo/metrics"
	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/objective"
	"github.com/polo-rl/polo/reward"
	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
)

// rolloutBatch is one step's sampled data: G responses per prompt, flattened row-wise.
type rolloutBatch struct {
	examples   []task.Example // per row
	prompts    [][]int32      // per row
	resps      [][]int32      // per row, sampled ids including the EOS when the response stopped
	finish     []string
	rewards    []float64   // combined reward per row
	components [][]float64 // per row, the named components (rewarder.names) the reward combines
	correct    []bool
	group      []int
	temps      [][]float32 // per row, the per-token sampling temperatures (Tempering objectives)
	// rollout: per row, the sampler's model log-probs of the response tokens (objective input
	// rollout_logp: off-policy correction and mismatch metrics; remote.go)
	rollout [][]float32
	version []int      // per row, the policy version (optimizer updates) that sampled it
	agent   *agentRows // agent mode: loss mask and tool statistics per row (agent.go)
	// nucleus: per row and response token, the masking policy's nucleus it was sampled from (nlpo.go)
	nucleus [][][]int32
	// tree: per row, its place in the step's SPO trees (segment_spo variant=tree; segtree.go)
	tree []treeRow
}

func (b *rolloutBatch) rows() int { return len(b.prompts) }

func (b *rolloutBatch) append(o *rolloutBatch, groupOffset int) {
	b.examples = append(b.examples, o.examples...)
	b.prompts = append(b.prompts, o.prompts...)
	b.resps = append(b.resps, o.resps...)
	b.finish = append(b.finish, o.finish...)
	b.rewards = append(b.rewards, o.rewards...)
	b.components = append(b.components, o.components...)
	b.correct = append(b.correct, o.correct...)
	b.temps = append(b.temps, o.temps...)
	b.rollout = append(b.rollout, o.rollout...)
	b.version = append(b.version, o.version...)
	b.nucleus = append(b.nucleus, o.nucleus...)
	b.tree = append(b.tree, o.tree...)
	b.agent = appendAgent(b.agent, o.agent)
	for _, g := range o.group {
		b.group = append(b.group, g+groupOffset)
	}
}

// subset keeps the given rows in order.
func (b *rolloutBatch) subset(rows []int) *rolloutBatch {
	out := &rolloutBatch{agent: b.agent.subset(rows)}
	for _, i := range rows {
		out.examples = append(out.examples, b.examples[i])
		out.prompts = append(out.prompts, b.prompts[i])
		out.resps = append(out.resps, b.resps[i])
		out.finish = append(out.finish, b.finish[i])
		out.rewards = append(out.rewards, b.rewards[i])
		out.components = append(out.components, b.components[i])
		out.correct = append(out.correct, b.correct[i])
		out.group = append(out.group, b.group[i])
		if b.temps != nil {
			out.temps = append(out.temps, b.temps[i])
		}
		if b.rollout != nil {
			out.rollout = append(out.rollout, b.rollout[i])
		}
		if b.version != nil {
			out.version = append(out.version, b.version[i])
		}
		if b.nucleus != nil {
			out.nucleus = append(out.nucleus, b.nucleus[i])
		}
		if b.tree != nil {
			out.tree = append(out.tree, b.tree[i])
		}
	}
	return out
}

func (r *runner) rl() error {
	total := r.cfg.RL.Steps
	if r.state.Phase != "rl" {
		_, err := r.evaluate("eval-sft", 0)
		if err != nil {
			return err
		}
		r.logPhaseMemory("sft")
		if err := r.startLoRA("rl"); err != nil {
			return err
		}
		if r.needRef {
			if r.ref, err = r.referenceModel(); err != nil {
				return err
			}
			// With LoRA the reference is the base, already in model.path or checkpoints/base.
			if shared := r.policy.HasAdapter() && r.cfg.Distill.Teacher == ""; !shared {
				if err := writeFolderAtomic(r.ckptDir, "reference", func(tmp string) error {
					if err := r.ref.Save(filepath.Join(tmp, "model")); err != nil {
						return err
					}
					return r.codec.save(filepath.Join(tmp, "model")) // loadable on its own (polo eval, LoadPolicy)
				}); err != nil {
					return err
				}
			}
		}
		if err := r.dpoPhase(); err != nil { // rto.go: reward.dpo_steps
			return err
		}
		if r.trainer, err = r.newTrainer("rl"); err != nil {
			return err
		}
		r.state = runState{Phase: "rl"}
		if total == 0 {
			return nil
		}
		if err := r.checkpoint(); err != nil { // rl-000000: RL can resume from its very start
			return err
		}
	}
	for step := r.state.Step + 1; step <= total; step++ {
		var vals map[string]float64
		var err error
		if r.pairObj != nil {
			vals, err = r.preferenceStep(step, total)
		} else {
			vals, err = r.rlStep(step, total)
		}
		if err != nil {
			return fmt.Errorf("rl step %d: %w", step, err)
		}
		r.state.Step = step
		if err := r.log.Write(metrics.Record{Step: step, Phase: "rl", Values: vals}); err != nil {
			return err
		}
		desc := fmt.Sprintf("rl %d/%d reward %.3f acc %.3f", step, total, vals["reward_mean"], vals["accuracy"])
		if r.pairObj != nil {
			desc = fmt.Sprintf("%s %d/%d loss %.3f margin %.3f", r.cfg.Algo.Name, step, total, vals["loss"], vals["reward_margin"])
		}
		evalNow := r.cfg.Eval.Every > 0 && step%r.cfg.Eval.Every == 0 || step == total
		if err := r.endStep("eval", step, total, desc, evalNow); err != nil {
			return err
		}
	}
	r.logPhaseMemory("rl")
	return r.syncFinal(r.trainer.StepCount()) // remote servers end with the saved policy
}

// referenceModel is the frozen model of the KL term: a copy of the policy as RL starts, or the
// distillation teacher.
func (r *runner) referenceModel() (*model.Model, error) {
	if r.cfg.Distill.Teacher == "" {
		if r.policy.HasAdapter() {
			return r.policy.Base(), nil // the base weights, shared: no copy
		}
		return r.policy.Clone()
	}
	t, err := model.Load(r.cfg.Distill.Teacher)
	if err != nil {
		return nil, fmt.Errorf("distill teacher: %w", err)
	}
	if t.Config().VocabSize != r.policy.Config().VocabSize {
		return nil, fmt.Errorf("distill teacher %s has vocab %d, the student %d; they must share a tokenizer", r.cfg.Distill.Teacher, t.Config().VocabSize, r.policy.Config().VocabSize)
	}
	return t, nil
}

// collect samples prompts_per_step prompts × group_size responses and scores them.
func (r *runner) collect(purpose string, step, nPrompts int) (*rolloutBatch, float64, float64, error) {
	if r.agent != nil {
		return r.agent.collect(r, purpose, step, nPrompts)
	}
	if r.offline != nil { // offline.go: off-policy groups from rl.offline_path
		return r.collectOffline(purpose, step, nPrompts)
	}
	g := r.cfg.Sampling.GroupSize
	exs, err := r.prompts.draw(purpose, step, nPrompts)
	if err != nil {
		return nil, 0, 0, err
	}
	if tc, _ := r.segmentTree(); tc != nil { // segtree.go: SPO-tree, one tree per prompt
		return r.collectTree(purpose, step, exs, tc)
	}
	b := &rolloutBatch{}
	for i, ex := range exs {
		p, err := r.codec.prompt(ex)
		if err != nil {
			return nil, 0, 0, err
		}
		for range g {
			b.examples = append(b.examples, ex)
			b.prompts = append(b.prompts, p)
			b.group = append(b.group, i)
		}
	}
	s := r.cfg.Sampling
	scfg := rollout.Config{Temperature: s.Temperature, TopK: s.TopK, TopP: s.TopP, MinP: s.MinP, MaxNewTokens: s.MaxNewTokens, StopTokens: []int32{r.codec.eos}}
	if t, ok := r.obj.(objective.Tempering); ok {
		scfg.TokenTemperature = t.TokenTemperature(s.Temperature)
	}
	t0 := time.Now()
	version := 0 // optimizer updates so far: the policy version the samples come from
	if r.trainer != nil {
		version = r.trainer.StepCount()
	}
	var comps []rollout.Completion
	sampled := version
	if r.maskPolicy != nil { // nlpo.go: through the masking policy's nucleus
		comps, b.nucleus, err = r.sampleMasked(b.prompts, scfg, seedFor(r.cfg.Seed, purpose+"-sample", step))
	} else {
		comps, sampled, err = r.rolloutSample(purpose, step, b.prompts, scfg, seedFor(r.cfg.Seed, purpose+"-sample", step), version)
	}
	if err != nil {
		return nil, 0, 0, err
	}
	rolloutS := time.Since(t0).Seconds()
	t1 := time.Now()
	texts := make([]string, len(comps))
	main := make([]reward.Score, len(comps))
	for i, c := range comps {
		b.resps = append(b.resps, c.Tokens)
		b.finish = append(b.finish, c.Finish)
		b.temps = append(b.temps, c.Temperature)
		b.rollout = append(b.rollout, c.ModelLogProbs)
		b.version = append(b.version, sampled)
		texts[i] = r.codec.text(c.Tokens)
		main[i] = r.score(texts[i], b.examples[i])
	}
	if err := r.rewarder.components(r, b, texts, main); err != nil {
		return nil, 0, 0, err
	}
	return b, rolloutS, time.Since(t1).Seconds(), nil
}

// objectiveBatch lays a rollout batch out as objective arrays: columns are response tokens.
func (r *runner) objectiveBatch(b *rolloutBatch) *objective.Batch {
	width := r.cfg.Sampling.MaxNewTokens
	ob := &objective.Batch{Rewards: b.rewards, RewardComponents: b.components, Group: b.group}
	for i := range b.rows() {
		m := make([]float64, width)
		for j := range b.resps[i] {
			if b.agent.trained(i, j) { // agent mode: environment tokens are not trained on
				m[j] = 1
			}
		}
		ob.Mask = append(ob.Mask, m)
		ob.PromptID = append(ob.PromptID, promptKey(b, i))
		ob.Truncated = append(ob.Truncated, b.finish[i] == "length")
		ob.Lengths = append(ob.Lengths, len(b.resps[i]))
		ids := make([]int, width)
		for j, t := range b.resps[i] {
			ids[j] = int(t)
		}
		ob.TokenIDs = append(ob.TokenIDs, ids)
	}
	setRolloutLogP(ob, b, width)
	return ob
}

// responseValues picks the response-token columns out of model position arrays ([rows][T-1]).
func responseValues(b *rolloutBatch, pos [][]float32, width int) [][]float64 {
	out := make([][]float64, len(pos))
	for i := range pos {
		out[i] = make([]float64, width)
		off := len(b.prompts[i]) - 1
		for j := range b.resps[i] {
			out[i][j] = float64(pos[i][off+j])
		}
	}
	return out
}

// positionCoefs is the inverse: objective gradients per response token placed at model positions.
func positionCoefs(b *rolloutBatch, grad [][]float64, seqWidth int) [][]float32 {
	if grad == nil {
		return nil
	}
	out := make([][]float32, len(grad))
	for i := range grad {
		out[i] = make([]float32, seqWidth-1)
		off := len(b.prompts[i]) - 1
		for j := range b.resps[i] {
			out[i][off+j] = float32(grad[i][j])
		}
	}
	return out
}

func (r *runner) rlStep(step, total int) (map[string]float64, error) {
	stepStart := time.Now()
	nPrompts := r.cfg.Sampling.PromptsPerStep
	synced, err := r.syncMaskPolicy(step) // nlpo.go
	if err != nil {
		return nil, err
	}
	batch, rolloutS, rewardS, err := r.collect("rollout", step, nPrompts)
	if err != nil {
		return nil, err
	}
	sampled := batch.rows()
	vals := map[string]float64{}
	if r.maskPolicy != nil {
		vals["nlpo_mask_synced"] = map[bool]float64{false: 0, true: 1}[synced]
		nucleusStats(batch, vals)
	}
	rewardStats(batch, vals)
	r.rewarder.componentStats(batch, vals)

	// Log-probs of the policy before the update (π_old, recomputed as verl does), the reference's, and
	// the entropies; then advantages and the preset's filters over the whole batch.
	t0 := time.Now()
	ob, posLogp, err := r.scoreBatch(batch)
	if err != nil {
		return nil, err
	}
	ob.Step = step
	keep, filterStats, err := r.prepare(ob)
	if err != nil {
		return nil, err
	}
	trainS := time.Since(t0).Seconds()

	// Dynamic sampling: refill dropped groups with fresh prompts.
	for round := 1; round <= r.cfg.RL.MaxRefills && countGroups(batch, keep) < nPrompts; round++ {
		extra, rs, ws, err := r.collect(fmt.Sprintf("refill%d", round), step, nPrompts)
		if err != nil {
			return nil, err
		}
		rolloutS += rs
		rewardS += ws
		sampled += extra.rows()
		batch.append(extra, (round)*nPrompts)
		t1 := time.Now()
		if ob, posLogp, err = r.scoreBatch(batch); err != nil {
			return nil, err
		}
		ob.Step = step
		if keep, filterStats, err = r.prepare(ob); err != nil {
			return nil, err
		}
		trainS += time.Since(t1).Seconds()
	}
	for k, v := range filterStats {
		vals["filter_"+k] = v
	}
	if batch.tree != nil { // segtree.go: each edge trained once, zero-advantage edges dropped
		vals["segment_tree_token_keep_frac"] = applyTreeMask(batch, ob)
	}
	r.distStats(ob, vals)
	r.segmentMetrics(vals)
	if r.agent != nil { // agent mode: ASPO shaping and tool metrics (agent.go)
		if err := r.agent.shapeAdvantages(batch, ob.Advantages, ob.Mask, vals); err != nil {
			return nil, err
		}
		agentStats(batch, vals)
	}
	rows := keptRows(batch, keep, nPrompts)
	vals["rows_trained"] = float64(len(rows))
	vals["rows_sampled"] = float64(sampled)

	t2 := time.Now()
	if len(rows) > 0 {
		lossVals, err := r.update(step, total, batch, ob, posLogp, rows)
		if err != nil {
			return nil, err
		}
		for k, v := range lossVals {
			vals[k] = v
		}
	}
	trainS += time.Since(t2).Seconds()
	obsVals, err := r.afterBatch(batch, ob)
	if err != nil {
		return nil, err
	}
	for k, v := range obsVals {
		vals[k] = v
	}
	if err := r.logRollouts(step, batch, ob); err != nil {
		return nil, err
	}
	temperatureStats(batch, vals)
	r.versionStats(batch, vals) // policy version and staleness of the samples (remote.go)
	tokens := 0
	for _, resp := range batch.resps {
		tokens += len(resp)
	}
	vals["rollout_s"], vals["reward_s"], vals["train_s"] = rolloutS, rewardS, trainS
	vals["tokens_per_s"] = float64(tokens) / time.Since(stepStart).Seconds()
	return vals, nil
}

// scoreBatch computes π_old (and π_ref) log-probs and entropies for every row and returns the
// objective batch plus the policy's per-position log-probs (reused for the first mini-batch).
func (r *runner) scoreBatch(b *rolloutBatch) (*objective.Batch, [][]float32, error) {
	width := r.cfg.Sampling.MaxNewTokens
	ids, mask := sequences(b.prompts, b.resps, r.codec.pad)
	ob := r.objectiveBatch(b)
	var logp, ent [][]float32
	var err error
	if distInputs(r.obj) { // distinputs.go: the same pass, plus full-distribution inputs
		logp, ent, err = r.oldPolicyDist(b, ids, mask, ob)
	} else {
		logp, ent, err = r.rlLogProbs(b, ids, mask) // layer.go: an internal layer's policy (bupo); nlpo's nucleus
	}
	if err != nil {
		return nil, nil, err
	}
	ob.OldLogP = responseValues(b, logp, width)
	ob.LogP = responseValues(b, logp, width)
	ob.Entropy = responseValues(b, ent, width)
	if _, _, ok := criticOf(r.obj); ok && objective.Declares(r.obj, objective.InValues) {
		if err := r.scoreValues(b, ids, mask, ob); err != nil { // critic.go
			return nil, nil, err
		}
	}
	if _, ok := segmentConfig(r.obj); ok {
		if _, err := r.scoreSegments(b, ob); err != nil { // segments.go
			return nil, nil, err
		}
	}
	if r.ref != nil {
		refLogp, _, err := r.ref.LogProbs(ids, mask)
		if err != nil {
			return nil, nil, err
		}
		ob.RefLogP = responseValues(b, refLogp, width)
	}
	if objective.Declares(r.obj, objective.InTokenRewards) && (r.cfg.Reward.DPOModel != "" || r.dpo != nil) {
		if err := r.scoreTokenRewards(b, ids, mask, ob); err != nil { // rto.go
			return nil, nil, err
		}
	}
	return ob, logp, nil
}

// prepare runs the objective's whole-batch phase (advantages, row and token selection, whole-batch
// targets) and applies it to ob; it returns the kept rows' flags and the filter statistics.
func (r *runner) prepare(ob *objective.Batch) ([]bool, map[string]float64, error) {
	p, err := objective.Prepare(r.obj, ob)
	if err != nil {
		return nil, nil, err
	}
	p.Apply(ob)
	return p.Keep, p.Stats, nil
}

// countGroups counts groups with at least one kept row.
func countGroups(b *rolloutBatch, keep []bool) int {
	seen := map[int]bool{}
	for i, k := range keep {
		if k {
			seen[b.group[i]] = true
		}
	}
	return len(seen)
}

// keptRows lists kept rows, at most the first `limit` groups of them (dynamic sampling fills the batch
// up to prompts_per_step groups and no further).
func keptRows(b *rolloutBatch, keep []bool, limit int) []int {
	var rows []int
	seen := map[int]bool{}
	for i, k := range keep {
		if !k {
			continue
		}
		if !seen[b.group[i]] {
			if len(seen) == limit {
				continue
			}
			seen[b.group[i]] = true
		}
		rows = append(rows, i)
	}
	return rows
}

// update runs rl.epochs × rl.mini_batches optimizer steps over the kept rows.
func (r *runner) update(step, total int, b *rolloutBatch, ob *objective.Batch, posLogp [][]float32, rows []int) (map[string]float64, error) {
	width := r.cfg.Sampling.MaxNewTokens
	nMini := min(r.cfg.RL.MiniBatches, len(rows))
	optSteps := r.cfg.RL.Epochs * nMini
	lr := learningRate(r.cfg.Optim, r.cfg.Optim.LR, step, total)
	sums := map[string]float64{}
	rng := rand.New(rand.NewPCG(seedFor(r.cfg.Seed, "minibatch", step), 0))
	mixer, hybrid := r.obj.(objective.ExpertMixer)
	hybrid = hybrid && r.cfg.Hybrid.ExpertRows > 0
	expertRNG := rand.New(rand.NewPCG(seedFor(r.cfg.Seed, "expert", step), 0))
	var returns [][]float64 // the critic's targets (critic.go)
	if crit, _, ok := criticOf(r.obj); ok && ob.Values != nil {
		var err error
		if returns, err = crit.Returns(ob); err != nil {
			return nil, err
		}
	}
	for epoch := 0; epoch < r.cfg.RL.Epochs; epoch++ {
		order := append([]int(nil), rows...)
		if nMini > 1 {
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		for m := 0; m < nMini; m++ {
			mb := order[m*len(order)/nMini : (m+1)*len(order)/nMini]
			sub := b.subset(mb)
			ids, mask := sequences(sub.prompts, sub.resps, r.codec.pad)
			mbBatch := ob.Subset(mb) // advantages and whole-batch targets included
			var mix objective.ExpertMix
			if hybrid {
				exp, err := r.expertRows(b, expertRNG)
				if err != nil {
					return nil, err
				}
				sub.prompts = append(sub.prompts, exp.prompts...)
				sub.resps = append(sub.resps, exp.resps...)
				ids, mask = sequences(sub.prompts, sub.resps, r.codec.pad)
				mix.Expert = make([]bool, len(sub.prompts))
				for i := len(mb); i < len(mix.Expert); i++ {
					mix.Expert[i] = true
				}
				appendExpertRows(mbBatch, exp, width)
			}
			if epoch == 0 && m == 0 && !hybrid {
				// Nothing has changed the policy since scoreBatch (the first optimizer step of the
				// batch has not run yet): reuse its log-probs instead of a second forward pass.
				mbBatch.LogP = pickRows(ob.LogP, mb)
			} else {
				logp, ent, err := r.rlLogProbs(sub, ids, mask)
				if err != nil {
					return nil, err
				}
				mbBatch.LogP = responseValues(sub, logp, width)
				mbBatch.Entropy = responseValues(sub, ent, width)
			}
			if r.opts.observe != nil {
				r.opts.observe("loss", mbBatch)
			}
			var res objective.Result
			var err error
			// The objective is scalar host code over every token: start it with a clean AVX upper
			// state (internal/avxstate: Intel Xeons penalise legacy SSE code after a dirty one).
			avxstate.Clear()
			if hybrid {
				res, err = mixer.MixedLoss(mbBatch, mix)
			} else {
				res, err = r.obj.Loss(mbBatch)
			}
			if err != nil {
				return nil, err
			}
			if ok, err := r.finiteLoss("rl", step, res.Loss, res.GradLogP, res.GradEntropy); !ok { // finite.go
				if err != nil {
					return nil, err
				}
				sums["skipped"]++
				continue
			}
			seqW := len(ids[0])
			if err := r.accumulateRL(sub, ids, mask, positionCoefs(sub, res.GradLogP, seqW), positionCoefs(sub, res.GradEntropy, seqW)); err != nil {
				return nil, err
			}
			if r.cfg.Distill.TopK > 0 {
				kl, err := r.topKDistill(sub, ids, mask) // topk.go
				if err != nil {
					return nil, err
				}
				sums["distill_topk_kl"] += kl
			}
			if returns != nil {
				vl, err := r.criticUpdate(sub, ob, returns, mb, ids, mask, epoch == 0 && m == 0)
				if err != nil {
					return nil, err
				}
				sums["value_loss"] += vl
			}
			gradNorm, applied, err := r.applyStep("rl", step, lr)
			if err := r.criticStep(applied && err == nil, lr); err != nil {
				return nil, err
			}
			if err != nil || !applied {
				sums["skipped"]++
				if err != nil {
					return nil, err
				}
				continue
			}
			sums["loss"] += res.Loss
			sums["grad_norm"] += gradNorm
			for k, v := range res.Metrics {
				sums[k] += v
			}
		}
	}
	out := map[string]float64{"lr": lr}
	if layer, _, ok := r.policyLayer(); ok {
		out["policy_layer"] = float64(layer)
	}
	for k, v := range sums {
		out[k] = v / float64(optSteps)
	}
	if returns != nil {
		out["value_mean"] = maskedMean(pickRows(ob.Values, rows), pickRows(ob.Mask, rows))
		out["return_mean"] = maskedMean(pickRows(returns, rows), pickRows(ob.Mask, rows))
	}
	// Entropy of the policy on the kept response tokens before the update.
	out["entropy"] = maskedMean(pickRows(ob.Entropy, rows), pickRows(ob.Mask, rows))
	if ob.RefLogP != nil {
		out["kl_ref_k3"] = k3(pickRows(ob.LogP, rows), pickRows(ob.RefLogP, rows), pickRows(ob.Mask, rows))
	}
	return out, nil
}

// expertRows draws hybrid.expert_rows demonstrations (the reference answer, then EOS) for prompts of
// this step's rollout batch: CHORD's expert data.
func (r *runner) expertRows(b *rolloutBatch, rng *rand.Rand) (*rolloutBatch, error) {
	exp := &rolloutBatch{}
	for range r.cfg.Hybrid.ExpertRows {
		i := rng.IntN(b.rows())
		ans := r.codec.answer(b.examples[i])
		if len(ans) > r.cfg.Sampling.MaxNewTokens {
			return nil, fmt.Errorf("hybrid: example %s's answer has %d tokens with EOS, more than sampling.max_new_tokens=%d", b.examples[i].ID, len(ans), r.cfg.Sampling.MaxNewTokens)
		}
		exp.examples = append(exp.examples, b.examples[i])
		exp.prompts = append(exp.prompts, b.prompts[i])
		exp.resps = append(exp.resps, ans)
	}
	return exp, nil
}

// appendExpertRows adds expert rows to a mini-batch: a mask over the answer tokens and zero
// behaviour log-probs and advantages (CHORD reads only LogP and Mask of expert rows).
func appendExpertRows(mb *objective.Batch, exp *rolloutBatch, width int) {
	for i := range exp.resps {
		mask := make([]float64, width)
		ids := make([]int, width)
		for j, t := range exp.resps[i] {
			mask[j] = 1
			ids[j] = int(t)
		}
		mb.Mask = append(mb.Mask, mask)
		mb.OldLogP = append(mb.OldLogP, make([]float64, width))
		mb.Advantages = append(mb.Advantages, make([]float64, width))
		if mb.RefLogP != nil {
			mb.RefLogP = append(mb.RefLogP, make([]float64, width))
		}
		if mb.Entropy != nil {
			mb.Entropy = append(mb.Entropy, make([]float64, width))
		}
		mb.Rewards = append(mb.Rewards, 0)
		mb.Group = append(mb.Group, -1)
		mb.PromptID = append(mb.PromptID, "expert|"+exp.examples[i].Prompt)
		mb.Truncated = append(mb.Truncated, false)
		mb.Lengths = append(mb.Lengths, len(exp.resps[i]))
		mb.TokenIDs = append(mb.TokenIDs, ids)
		if r, ok := mb.Extra[objective.InRolloutLogP].([][]float64); ok { // expert rows: no sampler
			mb.Extra[objective.InRolloutLogP] = append(r, make([]float64, width))
		}
	}
}

func pickRows[T any](m [][]T, rows []int) [][]T {
	if m == nil {
		return nil
	}
	out := make([][]T, len(rows))
	for k, i := range rows {
		out[k] = m[i]
	}
	return out
}

// rewardStats adds reward, accuracy, length and group statistics of a rollout batch.
func rewardStats(b *rolloutBatch, vals map[string]float64) {
	n := float64(b.rows())
	var sum, sq, correct, length, truncated float64
	for i := range b.rows() {
		sum += b.rewards[i]
		sq += b.rewards[i] * b.rewards[i]
		if b.correct[i] {
			correct++
		}
		length += float64(len(b.resps[i]))
		if b.finish[i] == "length" {
			truncated++
		}
	}
	m := sum / n
	vals["reward_mean"] = m
	vals["reward_std"] = math.Sqrt(math.Max(sq/n-m*m, 0))
	vals["accuracy"] = correct / n
	vals["response_len"] = length / n
	vals["truncated_frac"] = truncated / n
	groups := map[int][]float64{}
	for i, g := range b.group {
		groups[g] = append(groups[g], b.rewards[i])
	}
	zero := 0
	for _, rs := range groups {
		same := true
		for _, x := range rs {
			same = same && x == rs[0]
		}
		if same {
			zero++
		}
	}
	vals["zero_var_groups_frac"] = float64(zero) / float64(len(groups))
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func maskedMean(x, mask [][]float64) float64 {
	s, n := 0.0, 0.0
	for i := range x {
		for j := range x[i] {
			s += x[i][j] * mask[i][j]
			n += mask[i][j]
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return s / n
}

// k3 is the low-variance KL(π‖π_ref) estimate (objective.KL's k3, clamped as verl), averaged over
// tokens.
func k3(logp, ref, mask [][]float64) float64 {
	s, n := 0.0, 0.0
	for i := range logp {
		for j := range logp[i] {
			if mask[i][j] == 0 {
				continue
			}
			v, _ := objective.KL(objective.KLk3, logp[i][j], ref[i][j])
			s += v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return s / n
}
