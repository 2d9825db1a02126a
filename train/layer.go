package train

import (
	"fmt"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/objective"
)

// This file trains objectives on an internal layer's policy (bupo, objective.LayerSelector): while
// the objective says so, π_old's log-probs, the current log-probs and the gradient all come from the
// same layer's policy (model.LayerLogProbs, AccumulateLayer); rollouts are still sampled from the
// full model.

// policyLayer returns the layer the current RL step trains on, if an internal one.
func (r *runner) policyLayer() (layer int, finalNorm, internal bool) {
	ls, ok := r.obj.(objective.LayerSelector)
	if !ok {
		return -1, false, false
	}
	return ls.PolicyLayer(r.state.Step + 1) // state.Step is the last completed RL step
}

// rlLogProbs is LogProbs of the policy the current step trains.
func (r *runner) rlLogProbs(b *rolloutBatch, ids, mask [][]int32) (logp, entropy [][]float32, err error) {
	if r.maskPolicy != nil {
		return r.nucleusLogProbs(b, ids, mask) // nlpo.go
	}
	if layer, norm, ok := r.policyLayer(); ok {
		return r.policy.LayerLogProbs(ids, mask, layer, norm)
	}
	return r.policy.LogProbs(ids, mask)
}

// accumulateRL is accumulate for the policy the current step trains.
func (r *runner) accumulateRL(b *rolloutBatch, ids, mask [][]int32, coefLogp, coefEnt [][]float32) error {
	if r.maskPolicy != nil {
		return r.accumulateNucleus(b, ids, mask, coefLogp, coefEnt) // nlpo.go
	}
	layer, norm, ok := r.policyLayer()
	if !ok {
		_, err := r.accumulate(ids, mask, coefLogp, coefEnt)
		return err
	}
	if coefEnt != nil {
		return fmt.Errorf("objective %s: an entropy term on an internal layer's policy is not supported; set entropy_coef=0", r.cfg.Algo.Name)
	}
	size := r.cfg.RL.MicroBatchSize
	if size <= 0 || size > len(ids) {
		size = len(ids)
	}
	for lo := 0; lo < len(ids); lo += size {
		hi := min(lo+size, len(ids))
		if _, err := r.trainer.AccumulateLayer(ids[lo:hi], mask[lo:hi], coefLogp[lo:hi], layer, norm); err != nil {
			return err
		}
	}
	return nil
}

// checkPolicyLayer refuses an internal layer the configured model does not have, before training.
func checkPolicyLayer(c Config, obj objective.Objective) error {
	ls, ok := obj.(objective.LayerSelector)
	if !ok {
		return nil
	}
	layer, _, internal := ls.PolicyLayer(1)
	if !internal {
		return nil
	}
	var n int
	if c.Model.Path != "" {
		mc, err := model.LoadConfig(c.Model.Path)
		if err != nil {
			return err
		}
		n = mc.NumLayers
	} else {
		mc, err := model.Preset(c.Model.Preset, 2)
		if err != nil {
			return err
		}
		n = mc.NumLayers
	}
	if layer >= n {
		return fmt.Errorf("config field algo.set.layer = %d: the model has %d decoder layers (0..%d)", layer, n, n-1)
	}
	return nil
}
