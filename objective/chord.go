package objective

import (
	"fmt"
	"math"
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
	Warmup, Decay    int     // W, D: steps of linear warmup to MuPeak, then of cosine decay to MuValley
	MuPeak, MuValley float64 // schedule end points (0.1, 0.1: constant μ)
	Phi              bool    // weight expert tokens by sg(p(1−p)) (CHORD-φ)
	CutoffProb       float64 // clamp lp <= log(cutoff_prob) in the SFT term (1: off); φ uses the raw p
	Clip             float64 // PPO clip ε of the RL part (0.2)
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
	Register("chord", "CHORD: on-policy PPO loss mixed with SFT on expert rows, scheduled mu(step) and p(1-p) expert-token weighting",
		Params{"warmup": "0", "decay": "0", "mu_peak": "0.1", "mu_valley": "0.1", "phi": "true", "cutoff_prob": "1", "clip": "0.2"},
		func(p Params) (Objective, error) {
			r := reader{p: p}
			c := &CHORD{Warmup: r.int("warmup"), Decay: r.int("decay"), MuPeak: r.float("mu_peak"), MuValley: r.float("mu_valley"),
				Phi: r.bool("phi"), CutoffProb: r.float("cutoff_prob"), Clip: r.float("clip")}
			if r.err != nil {
				return nil, r.err
			}
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
			return c, nil
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

// Advantages is GRPO's outcome advantage (r − mean_g)/(std_g + 1e-6) on every valid token.
func (c *CHORD) Advantages(b *Batch) ([][]float64, error) {
	if err := opCheckBatch(b); err != nil {
		return nil, err
	}
	a, err := opGroupAdvantages(b.Rewards, b.Group, len(b.Mask))
	if err != nil {
		return nil, err
	}
	adv := opZeros(b.Mask)
	for i, row := range b.Mask {
		for t, m := range row {
			if m != 0 {
				adv[i][t] = a[i]
			}
		}
	}
	return adv, nil
}

// Loss is MixedLoss with no expert rows: (1 − μ)·L_RL.
func (c *CHORD) Loss(b *Batch) (Result, error) { return c.MixedLoss(b, ExpertMix{}) }

// MixedLoss computes (1 − μ(b.Step))·L_RL over the on-policy rows plus μ(Step)·L_SFT over the expert
// rows. On-policy rows need OldLogP and Advantages; expert rows only LogP and Mask.
func (c *CHORD) MixedLoss(b *Batch, mix ExpertMix) (Result, error) {
	if err := opCheckBatch(b); err != nil {
		return Result{}, err
	}
	n := len(b.Mask)
	if mix.Expert != nil && len(mix.Expert) != n {
		return Result{}, badInput("expert has %d values for %d rows", len(mix.Expert), n)
	}
	isExpert := func(i int) bool { return mix.Expert != nil && mix.Expert[i] }
	onPolicy := func(i int) bool { return !isExpert(i) }
	// Validate the on-policy rows' OldLogP and Advantages (expert rows may leave them empty).
	for _, f := range []struct {
		name string
		m    [][]float64
	}{{"old_logp", b.OldLogP}, {"advantages", b.Advantages}} {
		for i := 0; i < n; i++ {
			if !onPolicy(i) {
				continue
			}
			if len(f.m) != n {
				return Result{}, badInput("%s has %d rows, mask has %d: on-policy rows need %s", f.name, len(f.m), n, f.name)
			}
			if err := opCheckLike(f.name, [][]float64{f.m[i]}, [][]float64{b.Mask[i]}); err != nil {
				return Result{}, fmt.Errorf("row %d: %w", i, err)
			}
		}
	}
	mu := c.Mu(b.Step)
	res := Result{GradLogP: opZeros(b.Mask)}

	var rlLoss float64
	rlGrad := opZeros(b.Mask)
	valid, ratioSum, clipped := opSurrogate(b, b.Advantages, c.Clip, onPolicy, &rlLoss, rlGrad)
	ntok := b.NormTokens
	if ntok <= 0 {
		ntok = valid
	}
	opScale(&rlLoss, rlGrad, ntok)

	var sftLoss, expTok, phiSum float64
	sftGrad := opZeros(b.Mask)
	logCut := math.Log(c.CutoffProb)
	for i, row := range b.Mask {
		if !isExpert(i) {
			continue
		}
		for t, m := range row {
			if m == 0 {
				continue
			}
			lp := b.LogP[i][t]
			w := 1.0
			if c.Phi {
				w = ExpertWeight(math.Exp(lp))
			}
			phiSum += m * w
			expTok += m
			if lp > logCut { // clamped: constant, no gradient
				sftLoss -= m * w * logCut
				continue
			}
			sftLoss -= m * w * lp
			sftGrad[i][t] = -m * w
		}
	}
	etok := mix.NormExpertTokens
	if etok <= 0 {
		etok = expTok
	}
	opScale(&sftLoss, sftGrad, etok)

	res.Loss = (1-mu)*rlLoss + mu*sftLoss
	for i := range res.GradLogP {
		for t := range res.GradLogP[i] {
			res.GradLogP[i][t] = (1-mu)*rlGrad[i][t] + mu*sftGrad[i][t]
		}
	}
	v, e := math.Max(valid, 1), math.Max(expTok, 1)
	res.Metrics = map[string]float64{
		"mu": mu, "rl_loss": rlLoss, "sft_loss": sftLoss, "phi_mean": phiSum / e,
		"ratio_mean": ratioSum / v, "clip_frac": clipped / v, "tokens": valid, "expert_tokens": expTok,
	}
	return res, nil
}
