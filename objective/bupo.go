package objective

import "fmt"

// BuPO (Tan et al., arXiv 2512.19673): for the first iterative_steps optimizer steps the GRPO loss is
// computed on an internal layer's policy π_k = softmax(U·h_k) (old and current log-probs both from
// layer k), then on the full model. The loss is the host's; the model side supplies the layer's
// log-probs in LogP and OldLogP as PolicyLayer says.
func init() {
	registerSurrogate("bupo", "BuPO: GRPO on an internal layer's policy for the first iterative_steps steps (model fills logp from PolicyLayer)",
		BuPOParams{SurrogateParams: group(func(p *SurrogateParams) { p.DualClip = 10 }), Layer: 5, IterativeSteps: 30},
		func() *Surrogate {
			return &Surrogate{adv: advConfig{kind: advGroup}, Ratio: RatioToken, Gate: GateClip}
		},
		func(c *BuPOParams, s *Surrogate) (Objective, error) {
			b := &BuPO{Surrogate: s, Layer: c.Layer, Steps: c.IterativeSteps, FinalNorm: c.ApplyFinalNorm}
			if b.Layer < 0 || b.Steps < 0 {
				return nil, fmt.Errorf("layer=%d, iterative_steps=%d: want >= 0", b.Layer, b.Steps)
			}
			s.declare = needLayer // the trainer must fill logp/old_logp from PolicyLayer
			return b, nil
		})
}

// BuPOParams configure bupo.
type BuPOParams struct {
	SurrogateParams
	Layer          int  `param:"layer"`
	IterativeSteps int  `param:"iterative_steps"`
	ApplyFinalNorm bool `param:"apply_final_norm"`
}

// LayerSelector is implemented by objectives trained on an internal layer's policy (bupo).
type LayerSelector interface {
	// PolicyLayer returns, for a 1-based optimizer step, the 0-based decoder layer whose residual
	// stream (through the unembedding, after the final norm when finalNorm) gives both LogP and
	// OldLogP, or internal=false for the full model. Never mix sources between the two arrays.
	PolicyLayer(step int) (layer int, finalNorm, internal bool)
}

// BuPO is the bupo objective.
type BuPO struct {
	*Surrogate
	Layer, Steps int
	FinalNorm    bool
}

// PolicyLayer implements LayerSelector: layer k for steps 1..iterative_steps, then the full model.
func (b *BuPO) PolicyLayer(step int) (int, bool, bool) {
	if step <= b.Steps {
		return b.Layer, b.FinalNorm, true
	}
	return -1, false, false
}
