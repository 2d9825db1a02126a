package train

import (
	"fmt"
	"strconv"
	"time"

	"github.com/polo-rl/polo/reward"
)

// This file adds the shaping components configured under reward.drpo and reward.autorule to a
// rollout batch (rewarder.components calls shape after the verifier, extra and hapo components).
// Neither holds state across steps, so nothing goes into checkpoints.

// shaper computes the DRPO and AutoRule components.
type shaper struct {
	drpo      *DRPOReward
	drpoLen   int
	ruleNames []string
	rules     []reward.Verifier
}

// newShaper validates reward.drpo and reward.autorule and registers their components with rw.
func newShaper(c Config, rw *rewarder) (*shaper, error) {
	s := &shaper{}
	if d := c.Reward.DRPO; d.Weight != 0 {
		if !(d.Lambda > 0) || d.MaxLen < 0 {
			return nil, fmt.Errorf("config field reward.drpo: lambda = %v and max_len = %d: want lambda > 0 and max_len >= 0", d.Lambda, d.MaxLen)
		}
		s.drpo, s.drpoLen = &d, d.MaxLen
		if s.drpoLen == 0 {
			s.drpoLen = c.Sampling.MaxNewTokens
		}
		rw.names = append(rw.names, "drpo")
		rw.weights = append(rw.weights, d.Weight)
	}
	if a := c.Reward.AutoRule; a.Weight != 0 {
		if len(a.Rules) == 0 {
			return nil, fmt.Errorf("config field reward.autorule.rules: empty; AutoRule needs at least one rule (or set reward.autorule.weight: 0)")
		}
		timeout := time.Duration(c.Reward.Timeout * float64(time.Second))
		for i, rc := range a.Rules {
			if rc.Name == "" || contains(s.ruleNames, rc.Name) {
				return nil, fmt.Errorf("config field reward.autorule.rules[%d].name: want a unique non-empty name, got %q", i, rc.Name)
			}
			v, err := reward.NewVerifier(rc.Kind, rc.Options)
			if err != nil {
				return nil, fmt.Errorf("config field reward.autorule.rules[%d] (%s): %w", i, rc.Name, err)
			}
			s.ruleNames = append(s.ruleNames, rc.Name)
			s.rules = append(s.rules, reward.Safe(v, timeout))
		}
		rw.names = append(rw.names, "autorule")
		rw.weights = append(rw.weights, a.Weight)
	}
	return s, nil
}

// shape appends the configured components to comps (one row per response), in registration order.
func (s *shaper) shape(r *runner, b *rolloutBatch, texts []string, correct []bool, comps [][]float64) error {
	n := len(texts)
	if s.drpo != nil {
		groups := make([]string, n)
		lengths := make([]int, n)
		nCorrect := map[string]float64{}
		for i := range n {
			groups[i] = strconv.Itoa(b.group[i])
			lengths[i] = len(b.resps[i])
			if correct[i] {
				nCorrect[groups[i]]++
			}
		}
		w, err := reward.DRPOLengthWeights(groups, lengths, correct, s.drpoLen, s.drpo.Lambda)
		if err != nil {
			return err
		}
		for i := range n {
			v := 0.0
			if correct[i] {
				v = nCorrect[groups[i]]*w[i] - 1
			}
			comps[i] = append(comps[i], v)
		}
	}
	if s.rules != nil {
		for i := range n {
			verdicts := make([]bool, len(s.rules))
			for k, v := range s.rules {
				verdicts[k] = r.scoreWith(v, "reward.autorule "+s.ruleNames[k], texts[i], b.examples[i]).Correct
			}
			v, err := reward.RuleReward(verdicts)
			if err != nil {
				return err
			}
			comps[i] = append(comps[i], v)
		}
	}
	return nil
}
