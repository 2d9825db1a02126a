package train

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/objective"
)

// This file trains PPO's critic: a value head (model.ValueHead, linear on the policy's final hidden
// state) whose values are the objective's "values" input. Each optimizer step adds vf_coef times the
// clipped value loss to the policy loss: its gradient reaches the shared trunk through the trainer's
// accumulators, and the head through its own AdamW step (same learning rate and schedule).

// criticStateKey names the value head (weights and AdamW moments) in checkpoints (runState.Extra).
const criticStateKey = "value_head"

// criticOf returns the objective's critic, if it has one.
func criticOf(obj objective.Objective) (objective.Critic, objective.CriticConfig, bool) {
	c, ok := obj.(objective.Critic)
	if !ok {
		return nil, objective.CriticConfig{}, false
	}
	cfg, ok := c.CriticConfig()
	return c, cfg, ok
}

// valueHead returns the run's value head, created (zero: V = 0) on first use.
func (r *runner) valueHead() *model.ValueHead {
	if r.head == nil {
		r.head = model.NewValueHead(r.policy.Config().HiddenSize)
	}
	return r.head
}

// scoreValues fills ob.Values: the value head's values at the response positions under π_old.
func (r *runner) scoreValues(b *rolloutBatch, ids, mask [][]int32, ob *objective.Batch) error {
	v, err := r.policy.Values(ids, mask, r.valueHead())
	if err != nil {
		return err
	}
	ob.Values = responseValues(b, v, r.cfg.Sampling.MaxNewTokens)
	return nil
}

// criticUpdate adds the value loss of one mini-batch (rows mb of ob) to the accumulated gradients:
// current values (those of scoreBatch when the policy has not moved yet), the objective's clipped
// value loss against the rollout-time values and the returns, times vf_coef. It returns the loss.
func (r *runner) criticUpdate(sub *rolloutBatch, ob *objective.Batch, returns [][]float64, mb []int, ids, mask [][]int32, fresh bool) (float64, error) {
	crit, cfg, _ := criticOf(r.obj)
	width := r.cfg.Sampling.MaxNewTokens
	old := pickRows(ob.Values, mb)
	cur := old
	if !fresh {
		v, err := r.policy.Values(ids, mask, r.head)
		if err != nil {
			return 0, err
		}
		cur = responseValues(sub, v, width)
	}
	loss, grad, err := crit.ValueLoss(cur, old, pickRows(returns, mb), pickRows(ob.Mask, mb))
	if err != nil {
		return 0, err
	}
	for _, row := range grad {
		for t := range row {
			row[t] *= cfg.VFCoef
		}
	}
	if _, err := r.trainer.AccumulateValue(ids, mask, r.head, positionCoefs(sub, grad, len(ids[0]))); err != nil {
		return 0, err
	}
	return loss, nil
}

// criticStep applies the head's AdamW step after the policy's step was applied (or drops its
// gradients when the policy's was not).
func (r *runner) criticStep(applied bool, lr float64) error {
	if r.head == nil {
		return nil
	}
	if !applied {
		r.head.ClearGrad()
		return nil
	}
	_, err := r.head.Step(r.optimConfig("rl"), lr)
	if errors.Is(err, model.ErrNonFinite) {
		return fmt.Errorf("critic: %w", err)
	}
	return err
}

func (r *runner) saveCritic(st *runState) error {
	if r.head == nil {
		return nil
	}
	data, err := json.Marshal(r.head)
	if err != nil {
		return err
	}
	if st.Extra == nil {
		st.Extra = map[string][]byte{}
	}
	st.Extra[criticStateKey] = data
	return nil
}

func (r *runner) loadCritic(st runState) error {
	data, ok := st.Extra[criticStateKey]
	if !ok {
		return nil
	}
	h, err := model.LoadValueHead(data, r.policy.Config().HiddenSize)
	if err != nil {
		return err
	}
	r.head = h
	return nil
}
