package objective

import (
	"fmt"
	"math"

	"github.com/polo-rl/polo/internal/fmath"
)

// CHORD mixes expert demonstrations into on-policy RL (Zhang et al., 2025; spec B6, after
// modelscope/Trinity-RFT's chord policy loss):
//
//	L = (1 − μ(step))·L_RL + μ(step)·L_SFT
//
// L_RL is PPO's clipped surrogate (token-mean) on the on-policy rows; L_SFT is the token-mean over
// expert rows of −sg(φ(p))·lp with φ(p) = p(1−p), p = exp(lp) (φ on), or of −lp (plain SFT, φ off). φ
// trains hardest on the expert tokens the policy is unsure of and leaves alone those it already
// predicts or finds near-impossible. μ follows a warmup + cosine-decay schedule in the global step.
//
// Expert rows have no behaviour policy or advantage, so they are marked in an ExpertMix passed to
// MixedLoss; Loss(b) treats every row as on-policy. μ is read at Batch.Step (the RL step the trainer
// sets; 0 in a single evaluation), so CHORD holds no state. Advantages is GRPO's group-normalised outcome advantage (Rewards, Group);
// call it on the rollout rows only and give expert rows zero advantages.
type CHORD struct {
	Warmup     int     `param:"warmup"`      // W: steps of linear warmup to MuPeak
	Decay      int     `param:"decay"`       // D: then steps of cosine decay to MuValley
	MuPeak     float64 `param:"mu_peak"`     // schedule end points (0.1, 0.1: constant μ)
	MuValley   float64 `param:"mu_valley"`   //
	Phi        bool    `param:"phi"`         // weight expert tokens by sg(p(1−p)) (CHORD-φ)
	CutoffProb float64 `param:"cutoff_prob"` // clamp lp <= log(cutoff_prob) in the SFT term (1: off); φ uses the raw p
	Clip       float64 `param:"clip"`        // PPO clip ε of the RL part (0.2)
}

// ExpertMixer is implemented by objectives that train on expert demonstrations mixed into the
// rollout rows (chord): the trainer appends expert rows to each mini-batch and calls MixedLoss.
type ExpertMixer interface {
	MixedLoss(b *Batch, mix ExpertMix) (Result, error)
}

// ExpertMix marks the expert-demonstration rows of a batch for CHORD's MixedLoss.
type ExpertMix struct {
	Expert []bool // per row: true for an expert demonstration (only LogP and Mask are read)
	// NormExpertTokens, when > 0, is the number of expert tokens of the whole optimizer mini-batch this
	// batch is a micro-batch of (Batch.NormTokens likewise counts on-policy tokens), so micro-batch
	// losses sum to the whole; zero means this batch is the whole.
	NormExpertTokens float64
}

func init() {
	RegisterTyped("chord", "CHORD: on-policy PPO loss mixed with SFT on expert rows, scheduled mu(step) and p(1-p) expert-token weighting",
		CHORD{MuPeak: 0.1, MuValley: 0.1, Phi: true, CutoffProb: 1, Clip: 0.2},
		func(c CHORD) (Objective, error) {
			switch {
			case c.Warmup < 0 || c.Decay < 0:
				return nil, fmt.Errorf("warmup=%d, decay=%d: want step counts >= 0", c.Warmup, c.Decay)
			case c.MuPeak < 0 || c.MuPeak > 1 || c.MuValley < 0 || c.MuValley > 1:
				return nil, fmt.Errorf("mu_peak=%g, mu_valley=%g: want weights in [0, 1]", c.MuPeak, c.MuValley)
			case !(c.CutoffProb > 0) || c.CutoffProb > 1:
				return nil, fmt.Errorf("cutoff_prob=%g: want a probability in (0, 1]", c.CutoffProb)
			case c.Clip <= 0:
				return nil, fmt.Errorf("clip=%g: want a positive number", c.Clip)
			}
			return &c, nil
		})
}

// Mu is the SFT weight μ at a global step: linear warmup from 0 to MuPeak over Warmup steps, cosine
// decay to MuValley over the next Decay steps, MuValley after.
func (c *CHORD) Mu(step int) float64 {
	w, d := float64(c.Warmup), float64(c.Decay)
	s := float64(step)
	switch {
	case s < w:
		return s / w * c.MuPeak
	case s >= w+d:
		return c.MuValley
	}
	return (c.MuPeak-c.MuValley)*0.5*(1+math.Cos(math.Pi*(s-w)/d)) + c.MuValley
}

// ExpertWeight is φ(p) = p(1−p).
func ExpertWeight(p float64) float64 { return p * (1 - p) }

// Advantages is GRPO's outcome advantage (r − mean_g)/(std_g + 1e-6) on every valid token (Group nil:
// one group; a group of one follows the shared singleton rule, A = r/(1 + 1e-6)).
func (c *CHORD) Advantages(b *Batch) ([][]float64, error) {
	if err := check(b, needRewards); err != nil {
		return nil, err
	}
	return broadcast(GroupAdvantages(b.Rewards, groupOrOne(b), b.Mask, "group", 1e-6, SingletonVerl), b.Mask), nil
}

// Inputs implements Objective: GRPO advantages from rewards, μ from the RL step.
func (c *CHORD) Inputs() []string { return (needLogP | needOld | needRewards | needStep).names() }

// Loss is MixedLoss with no expert rows: (1 − μ)·L_RL.
func (c *CHORD) Loss(b *Batch) (Result, error) { return c.MixedLoss(b, ExpertMix{}) }

// MixedLoss computes (1 − μ(b.Step))·L_RL over the on-policy rows plus μ(b.Step)·L_SFT over the expert
// rows. On-policy rows need OldLogP and Advantages; expert rows only LogP and Mask.
func (c *CHORD) MixedLoss(b *Batch, mix ExpertMix) (Result, error) {
	// Expert rows may leave old_logp and advantages empty: check the shared arrays on all rows, the
	// on-policy ones below on the on-policy rows.
	if err := check(&Batch{LogP: b.LogP, Mask: b.Mask}, needLogP); err != nil {
		return Result{}, err
	}
	n := len(b.Mask)
	if mix.Expert != nil && len(mix.Expert) != n {
		return Result{}, badInput("expert has %d values for %d rows", len(mix.Expert), n)
	}
	// Each part is a token-mean over its own rows: mask the other rows out.
	onMask, expMask := newLike(b.Mask), newLike(b.Mask)
	var onRows []int
	for i, row := range b.Mask {
		dst := onMask
		if mix.Expert != nil && mix.Expert[i] {
			dst = expMask
		} else {
			onRows = append(onRows, i)
		}
		copy(dst[i], row)
	}
	// On-policy rows need old log-probs and advantages (expert rows may leave them empty).
	if len(onRows) > 0 {
		for _, f := range []struct {
			name string
			m    [][]float64
		}{{"old_logp", b.OldLogP}, {"advantages", b.Advantages}} {
			if len(f.m) != n {
				return Result{}, badInput("%s: %d rows, mask has %d: on-policy rows need %s", f.name, len(f.m), n, f.name)
			}
		}
		if err := check(b.Subset(onRows), needLogP|needOld|needAdv); err != nil {
			return Result{}, err
		}
	}
	mu := c.Mu(b.Step)

	// L_RL: PPO's clipped surrogate, token-mean over the on-policy tokens.
	rlLoss, rlGrad, acc := 0.0, newLike(b.Mask), metricAcc{}
	if len(onRows) > 0 {
		rlLoss, rlGrad, acc = policyGradient(b.LogP, b.OldLogP, b.Advantages, tokenMean(onMask, b.NormTokens), c.Clip)
	}

	// L_SFT: token-mean over the expert tokens of −sg(φ(p))·min(lp, log cutoff).
	wExp := tokenMean(expMask, mix.NormExpertTokens)
	var sftLoss, expTok, phiSum float64
	sftGrad := newLike(b.Mask)
	logCut := math.Log(c.CutoffProb)
	for i, row := range expMask {
		for t, m := range row {
			if m == 0 {
				continue
			}
			lp := b.LogP[i][t]
			w := 1.0
			if c.Phi {
				w = ExpertWeight(fmath.Exp(lp))
			}
			phiSum += w
			expTok++
			if lp > logCut { // clamped: constant, no gradient
				sftLoss -= wExp[i][t] * w * logCut
				continue
			}
			sftLoss -= wExp[i][t] * w * lp
			sftGrad[i][t] = -wExp[i][t] * w
		}
	}

	res := Result{Loss: (1-mu)*rlLoss + mu*sftLoss, GradLogP: newLike(b.Mask)}
	for i := range res.GradLogP {
		for t := range res.GradLogP[i] {
			res.GradLogP[i][t] = (1-mu)*rlGrad[i][t] + mu*sftGrad[i][t]
		}
	}
	res.Metrics = map[string]float64{
		"mu": mu, "rl_loss": rlLoss, "sft_loss": sftLoss, "phi_mean": phiSum / math.Max(expTok, 1),
		"ratio_mean": acc.ratioMean(), "clip_frac": acc.clipFrac(), "tokens": acc.n, "expert_tokens": expTok,
	}
	return res, nil
}
