package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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

// valueModel is a separate critic trunk (rl.critic_model) with its own optimizer.
type valueModel struct {
	m  *model.Model
	tr *model.Trainer
}

// criticTrunk returns the model whose hidden states the value head reads and the trainer its
// gradient goes to: the policy's, or the separate value model's (loaded on first use).
func (r *runner) criticTrunk() (*model.Model, *model.Trainer, error) {
	if r.cfg.RL.CriticModel == "" {
		return r.policy, r.trainer, nil
	}
	if r.vm == nil {
		m, err := model.Load(r.cfg.RL.CriticModel)
		if err != nil {
			return nil, nil, fmt.Errorf("rl.critic_model: %w", err)
		}
		if m.Config().VocabSize != r.policy.Config().VocabSize {
			return nil, nil, fmt.Errorf("rl.critic_model %s has vocab %d, the policy %d; they must share a tokenizer", r.cfg.RL.CriticModel, m.Config().VocabSize, r.policy.Config().VocabSize)
		}
		tr, err := model.NewTrainer(m, r.optimConfig("rl"))
		if err != nil {
			return nil, nil, err
		}
		r.vm = &valueModel{m: m, tr: tr}
	}
	return r.vm.m, r.vm.tr, nil
}

// valueHead returns the run's value head, created (zero: V = 0) on first use.
func (r *runner) valueHead() (*model.ValueHead, error) {
	if r.head == nil {
		m, _, err := r.criticTrunk()
		if err != nil {
			return nil, err
		}
		r.head = model.NewValueHead(m.Config().HiddenSize)
	}
	return r.head, nil
}

// scoreValues fills ob.Values: the value head's values at the response positions under π_old.
func (r *runner) scoreValues(b *rolloutBatch, ids, mask [][]int32, ob *objective.Batch) error {
	head, err := r.valueHead()
	if err != nil {
		return err
	}
	trunk, _, err := r.criticTrunk()
	if err != nil {
		return err
	}
	v, err := trunk.Values(ids, mask, head)
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
	trunk, tr, err := r.criticTrunk()
	if err != nil {
		return 0, err
	}
	width := r.cfg.Sampling.MaxNewTokens
	old := pickRows(ob.Values, mb)
	cur := old
	if !fresh {
		v, err := trunk.Values(ids, mask, r.head)
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
	if _, err := tr.AccumulateValue(ids, mask, r.head, positionCoefs(sub, grad, len(ids[0]))); err != nil {
		return 0, err
	}
	return loss, nil
}

// criticStep applies the head's AdamW step after the policy's step was applied (or drops its
// gradients when the policy's was not). A separate value model steps on its own, with the head.
func (r *runner) criticStep(applied bool, lr float64) error {
	if r.head == nil {
		return nil
	}
	if r.vm != nil {
		if _, err := r.vm.tr.Step(lr); err != nil {
			return fmt.Errorf("critic model: %w", err)
		}
		applied = true
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
	d := r.policy.Config().HiddenSize
	if r.vm != nil {
		d = r.vm.m.Config().HiddenSize
	}
	h, err := model.LoadValueHead(data, d)
	if err != nil {
		return err
	}
	r.head = h
	return nil
}

// saveValueModel writes the separate value model and its optimizer into a checkpoint folder.
func (r *runner) saveValueModel(dir string) error {
	if r.vm == nil {
		return nil
	}
	if err := r.vm.m.Save(filepath.Join(dir, "value_model")); err != nil {
		return err
	}
	return r.vm.tr.SaveState(filepath.Join(dir, "value_optimizer.bin"))
}

// loadValueModel restores what saveValueModel wrote (nothing when the checkpoint has none: the
// value model is then loaded from rl.critic_model on first use, as at the start of RL).
func (r *runner) loadValueModel(dir string) error {
	path := filepath.Join(dir, "value_model")
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	m, err := model.Load(path)
	if err != nil {
		return fmt.Errorf("value model: %w", err)
	}
	tr, err := model.NewTrainer(m, r.optimConfig("rl"))
	if err != nil {
		return err
	}
	if err := tr.LoadState(filepath.Join(dir, "value_optimizer.bin")); err != nil {
		return fmt.Errorf("value model: %w", err)
	}
	r.vm = &valueModel{m: m, tr: tr}
	return nil
}
