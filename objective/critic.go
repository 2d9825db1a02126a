package objective

import "fmt"

// CriticConfig is the value-function part of an actor-critic preset (ppo): the critic loss
// 0.5·agg(max((V-R)², (clip(V, V_old ± ValueClip) - R)²)) enters the trained loss times VFCoef.
type CriticConfig struct {
	VFCoef, ValueClip float64
}

// Critic is implemented by objectives that train a value function beside the policy. The trainer
// computes the values (input values) with a value head on the policy's trunk, asks for the returns
// the values regress to, and adds VFCoef times the critic loss to the policy's.
type Critic interface {
	// CriticConfig returns the critic's settings; ok is false for objectives without a critic.
	CriticConfig() (c CriticConfig, ok bool)
	// Returns are the critic's regression targets on a prepared batch (values, rewards and the
	// reward-side KL as the advantages used them): the GAE returns A + V before whitening.
	Returns(b *Batch) ([][]float64, error)
	// ValueLoss is the critic loss (without VFCoef) of the current values against oldValues (the
	// values at rollout time) and returns, with dLoss/dV per token.
	ValueLoss(values, oldValues, returns, mask [][]float64) (float64, [][]float64, error)
}

// CriticConfig implements Critic.
func (s *Surrogate) CriticConfig() (CriticConfig, bool) {
	if s.critic == nil {
		return CriticConfig{}, false
	}
	return *s.critic, true
}

// Returns implements Critic.
func (s *Surrogate) Returns(b *Batch) ([][]float64, error) {
	if s.critic == nil || s.adv.kind != advGAE {
		return nil, fmt.Errorf("objective has no critic")
	}
	if err := check(b, s.adv.need()); err != nil {
		return nil, err
	}
	_, ret := GAE(s.adv.tokenRewards(b), b.Values, b.Mask, s.adv.gamma, s.adv.lambda)
	return ret, nil
}

// ValueLoss implements Critic with the policy loss's aggregation.
func (s *Surrogate) ValueLoss(values, oldValues, returns, mask [][]float64) (float64, [][]float64, error) {
	if s.critic == nil {
		return 0, nil, fmt.Errorf("objective has no critic")
	}
	return ValueLoss(values, oldValues, returns, mask, s.critic.ValueClip, s.Agg, s.MaxLen)
}
