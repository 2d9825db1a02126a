package train

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/polo-rl/polo/objective"
	"github.com/polo-rl/polo/rollout"
)

// This file trains NLPO (objective.ActionMasker): the policy acts on an action space masked to the
// top-p nucleus of a masking policy, a copy of the policy taken before RL steps 1, 1+N, 1+2N, …
// (N = mask_sync_every). Rollouts are sampled through rollout.MaskedDecoder, which records each
// token's nucleus; π_old, the trained log-probs and their gradient are all renormalised over those
// recorded nuclei (model.NucleusLogProbs, AccumulateNucleus), as RL4LMs keeps its action masks in
// the rollout buffer. The masking policy is checkpointed (mask_model/), so a resumed run masks with
// the same weights.

// actionMask returns the objective's masking settings, if it masks its action space.
func actionMask(obj objective.Objective) (objective.ActionMaskConfig, bool) {
	am, ok := obj.(objective.ActionMasker)
	if !ok {
		return objective.ActionMaskConfig{}, false
	}
	return am.ActionMask()
}

// checkActionMask refuses what a masked action space cannot combine with, before training.
func checkActionMask(c Config, obj objective.Objective) error {
	if _, ok := actionMask(obj); !ok {
		return nil
	}
	switch {
	case c.Rollout.Engine == "remote":
		return fmt.Errorf("objective %s samples with a masking policy's nucleus, which remote servers do not apply; use rollout.engine: local", c.Algo.Name)
	case c.Agent.Enabled:
		return fmt.Errorf("objective %s: agent mode does not sample through the masking policy yet; use agent.enabled: false", c.Algo.Name)
	}
	return nil
}

// syncMaskPolicy makes the masking policy a copy of the policy before the RL steps that start a
// sync interval (1, 1+N, …), and when there is none yet. It reports whether it synced.
func (r *runner) syncMaskPolicy(step int) (bool, error) {
	cfg, ok := actionMask(r.obj)
	if !ok {
		return false, nil
	}
	if r.maskPolicy != nil && (step-1)%cfg.SyncEvery != 0 {
		return false, nil
	}
	m, err := r.policy.Clone()
	if err != nil {
		return false, fmt.Errorf("masking policy: %w", err)
	}
	r.maskPolicy = m
	return true, nil
}

// sampleMasked samples through the masking policy's nucleus and returns each token's nucleus
// (sets[i][t] for token t of completion i).
func (r *runner) sampleMasked(prompts [][]int32, scfg rollout.Config, seed uint64) ([]rollout.Completion, [][][]int32, error) {
	cfg, _ := actionMask(r.obj)
	maxPrompt := 0
	for _, p := range prompts {
		maxPrompt = max(maxPrompt, len(p))
	}
	pol, err := r.policy.NewDecoder(len(prompts), maxPrompt+scfg.MaxNewTokens)
	if err != nil {
		return nil, nil, err
	}
	msk, err := r.maskPolicy.NewDecoder(len(prompts), maxPrompt+scfg.MaxNewTokens)
	if err != nil {
		return nil, nil, err
	}
	dec := &rollout.MaskedDecoder{Policy: pol, Mask: msk, TopP: cfg.TopP, Always: scfg.StopTokens}
	comps, err := rollout.Sample(dec, prompts, scfg, seed)
	if err != nil {
		return nil, nil, err
	}
	sets := make([][][]int32, len(comps))
	for i, c := range comps {
		sets[i] = dec.Sets[i][:len(c.Tokens)]
	}
	return comps, sets, nil
}

// sampleEval samples held-out answers: through the masking policy's nucleus once NLPO has one (the
// policy NLPO trains acts on the masked action space, and RL4LMs' NLPO policy generates through its
// mask in evaluation too), else from the policy.
func (r *runner) sampleEval(prompts [][]int32, scfg rollout.Config, seed uint64) ([]rollout.Completion, error) {
	if r.maskPolicy == nil {
		return r.sample(prompts, scfg, seed)
	}
	comps, _, err := r.sampleMasked(prompts, scfg, seed)
	return comps, err
}

// positionSets lays the response tokens' nuclei out at model positions ([rows][T-1], nil = the
// whole vocabulary: prompt positions and rows without sets, e.g. expert rows).
func positionSets(b *rolloutBatch, seqWidth int) [][][]int32 {
	out := make([][][]int32, len(b.prompts))
	for i := range out {
		out[i] = make([][]int32, seqWidth-1)
		if i >= len(b.nucleus) {
			continue
		}
		off := len(b.prompts[i]) - 1
		for j, s := range b.nucleus[i] {
			out[i][off+j] = s
		}
	}
	return out
}

// nucleusLogProbs is rlLogProbs on the masked action space.
func (r *runner) nucleusLogProbs(b *rolloutBatch, ids, mask [][]int32) (logp, entropy [][]float32, err error) {
	return r.policy.NucleusLogProbs(ids, mask, positionSets(b, len(ids[0])))
}

// accumulateNucleus is accumulateRL on the masked action space, in micro-batches.
func (r *runner) accumulateNucleus(b *rolloutBatch, ids, mask [][]int32, coefLogp, coefEnt [][]float32) error {
	if coefEnt != nil {
		return fmt.Errorf("objective %s: an entropy term on the masked action space is not supported; set entropy_coef=0", r.cfg.Algo.Name)
	}
	sets := positionSets(b, len(ids[0]))
	size := r.cfg.RL.MicroBatchSize
	if size <= 0 || size > len(ids) {
		size = len(ids)
	}
	for lo := 0; lo < len(ids); lo += size {
		hi := min(lo+size, len(ids))
		if _, _, err := r.trainer.AccumulateNucleus(ids[lo:hi], mask[lo:hi], sets[lo:hi], coefLogp[lo:hi]); err != nil {
			return err
		}
	}
	return nil
}

// nucleusStats adds the mean nucleus size of the step's response tokens.
func nucleusStats(b *rolloutBatch, vals map[string]float64) {
	var n, size float64
	for _, row := range b.nucleus {
		for _, s := range row {
			n++
			size += float64(len(s))
		}
	}
	if n > 0 {
		vals["nlpo_nucleus_mean"] = size / n
	}
}

// saveMaskPolicy writes the masking policy into a checkpoint folder, as the policy is written (an
// adapted policy's copy as its adapter on the same base).
func (r *runner) saveMaskPolicy(dir string) error {
	if r.maskPolicy == nil {
		return nil
	}
	return r.saveModel(r.maskPolicy, filepath.Join(dir, "mask_model"))
}

// loadMaskPolicy restores what saveMaskPolicy wrote (nothing when the checkpoint has none: the
// next RL step then syncs, as at the start of RL).
func (r *runner) loadMaskPolicy(dir string) error {
	path := filepath.Join(dir, "mask_model")
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	m, err := r.loadPolicy(path)
	if err != nil {
		return fmt.Errorf("masking policy: %w", err)
	}
	r.maskPolicy = m
	return nil
}
