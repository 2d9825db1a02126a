package train

import (
	"fmt"
	"path/filepath"

	"github.com/polo-rl/polo/metrics"
	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/objective"
)

// This file gives RTO its dense token rewards: the DPO-trained model's log-probs of the sampled
// tokens against the reference's (reward.dpo_model; the reference is the policy as RL starts, which
// should be the DPO model's own starting point, e.g. a `polo train` DPO run from the same SFT).

// dpoTokenRewarder is implemented by objectives that turn DPO-model log-probs into token rewards (rto).
type dpoTokenRewarder interface {
	DPOTokenRewards(dpoLogP, refLogP, mask [][]float64) ([][]float64, error)
}

// scoreTokenRewards fills ob.TokenRewards from the DPO model (ob.RefLogP must be set).
func (r *runner) scoreTokenRewards(b *rolloutBatch, ids, mask [][]int32, ob *objective.Batch) error {
	tr, ok := r.obj.(dpoTokenRewarder)
	if !ok {
		return fmt.Errorf("objective %s reads token_rewards but does not say how to make them from a DPO model", r.cfg.Algo.Name)
	}
	if r.dpo == nil {
		m, err := model.Load(r.cfg.Reward.DPOModel)
		if err != nil {
			return fmt.Errorf("reward.dpo_model: %w", err)
		}
		if m.Config().VocabSize != r.policy.Config().VocabSize {
			return fmt.Errorf("reward.dpo_model %s has vocab %d, the policy %d; they must share a tokenizer", r.cfg.Reward.DPOModel, m.Config().VocabSize, r.policy.Config().VocabSize)
		}
		r.dpo = m
	}
	lp, _, err := r.dpo.LogProbs(ids, mask)
	if err != nil {
		return err
	}
	ob.TokenRewards, err = tr.DPOTokenRewards(responseValues(b, lp, r.cfg.Sampling.MaxNewTokens), ob.RefLogP, ob.Mask)
	return err
}

// dpoModelFolder holds the DPO phase's model (reward.dpo_steps) in the checkpoints folder.
const dpoModelFolder = "dpo_model"

// dpoPhase trains RTO's DPO model in the run (reward.dpo_steps > 0), as RL starts: a copy of the
// policy takes dpo_steps DPO steps on the preference section's pairs against the policy as the
// reference (r.ref, the same model RTO's token rewards compare with), exactly as a separate
// `polo train` run with algo.name dpo, the same seed and SFT, and rl.steps = dpo_steps would
// (same pairs, schedule and optimizer). Its steps are logged with phase "dpo"; the model is saved
// to checkpoints/dpo_model before the first RL checkpoint, and the policy RL trains is unchanged.
func (r *runner) dpoPhase() error {
	n := r.cfg.Reward.DPOSteps
	if n <= 0 {
		return nil
	}
	if r.ref == nil {
		return fmt.Errorf("reward.dpo_steps: no reference model (the objective must read ref_logp)")
	}
	pairObj, err := objective.NewPair("dpo", nil)
	if err != nil {
		return err
	}
	dpo, err := r.policy.Clone()
	if err != nil {
		return err
	}
	policy, trainer, obj := r.policy, r.trainer, r.pairObj
	defer func() { r.policy, r.trainer, r.pairObj = policy, trainer, obj }()
	r.policy, r.pairObj = dpo, pairObj
	if r.trainer, err = r.newTrainer("rl"); err != nil {
		return err
	}
	for step := 1; step <= n; step++ {
		vals, err := r.preferenceStep(step, n)
		if err != nil {
			return fmt.Errorf("dpo step %d of reward.dpo_steps: %w", step, err)
		}
		if err := r.log.Write(metrics.Record{Step: step, Phase: "dpo", Values: vals}); err != nil {
			return err
		}
		fmt.Fprintf(r.opts.Log, "dpo %d/%d (reward.dpo_steps) loss %.3f margin %.3f\n", step, n, vals["loss"], vals["reward_margin"])
	}
	if err := writeFolderAtomic(r.ckptDir, dpoModelFolder, func(tmp string) error {
		return dpo.Save(filepath.Join(tmp, "model"))
	}); err != nil {
		return err
	}
	r.dpo = dpo
	return nil
}
