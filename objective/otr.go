package objective

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/polo-rl/polo/internal/fmath"
)

// OTR is One-Token Rollout (Ming et al., 2025; spec B7): supervised fine-tuning recast as a policy
// gradient. At every position t of an SFT sequence (teacher-forced on the ground-truth prefix) K
// candidate tokens are drawn from softmax(logits/T_r); a candidate earns reward 1 if it is the
// ground-truth token and β (< 1) otherwise, and the loss is
//
//	L = −(1/Ntok)·Σ_t M[t]·(1/K)·Σ_k R_{t,k}·log π_θ(a_{t,k} | prefix_t).
//
// Batch layout (the K-row form): each SFT sequence becomes K rows; row k holds at column t the k-th
// candidate a_{t,k}: LogP is log π_θ(a_{t,k} | prefix_t) (gathered from the logits at position t),
// TokenIDs the candidate ids, Mask the sequence's mask, and TokenRewards the rewards R_{t,k}, which
// Rewards fills from candidates and targets with this objective's β. Advantages returns TokenRewards on
// valid tokens; Loss is the token-mean of −A·LogP (Ntok over all K rows is K times the sequence's
// count, which is the 1/K above). Draw samples the candidates. ExpectedLoss is the exact-expectation
// variant on logits (a reviewer's suggestion, not the paper's method).
type OTR struct {
	K           int     // candidates per position (reviews of the paper: 256)
	Temperature float64 // rollout temperature T_r (1; reviews say > 1, value unverified)
	Beta        float64 // reward of a mismatching candidate (−0.1, unverified)
}

// otrDefaults are OTR's parameters and defaults.
var otrDefaults = Params{"k": "256", "temperature": "1", "beta": "-0.1"}

// NewOTR builds OTR from its defaults (k 256, temperature 1, beta −0.1) overridden by overrides. OTR is
// not in the token-objective registry: it needs the rollout rewards of its own K-row layout
// (TokenRewards), which a generic rollout batch does not have, so the trainer's SFT/hybrid mode builds
// it by name with this function.
func NewOTR(overrides map[string]string) (*OTR, error) {
	p := Params{}
	for k, v := range otrDefaults {
		p[k] = v
	}
	for k, v := range overrides {
		if _, ok := otrDefaults[k]; !ok {
			return nil, fmt.Errorf("objective otr: unknown parameter %q (known: %s)", k, strings.Join(sortedKeys(otrDefaults), ", "))
		}
		p[k] = v
	}
	r := reader{p: p}
	o := &OTR{K: r.int("k"), Temperature: r.float("temperature"), Beta: r.float("beta")}
	var err error
	switch {
	case r.err != nil:
		err = r.err
	case o.K < 1:
		err = fmt.Errorf("k=%d: want at least 1 candidate", o.K)
	case !(o.Temperature > 0) || math.IsInf(o.Temperature, 0):
		err = fmt.Errorf("temperature=%g: want a positive number", o.Temperature)
	case !(o.Beta < 1):
		err = fmt.Errorf("beta=%g: want a mismatch reward below the match reward 1", o.Beta)
	}
	if err != nil {
		return nil, fmt.Errorf("objective otr: %w", err)
	}
	return o, nil
}

// Draw samples K candidate ids from softmax(logits/Temperature) (no gradient flows through sampling).
func (o *OTR) Draw(rng *rand.Rand, logits []float64) ([]int, error) {
	p, err := opTemperedProbs(logits, o.Temperature)
	if err != nil {
		return nil, err
	}
	out := make([]int, o.K)
	for k := range out {
		u := rng.Float64()
		v := len(p) - 1 // rounding: fall back to the last token
		for j, x := range p {
			if u < x {
				v = j
				break
			}
			u -= x
		}
		out[k] = v
	}
	return out, nil
}

// Rewards returns R[k][t] = 1 where candidates[k][t] equals targets[t], else Beta, for one sequence's
// K rows (candidates[k][t] is the k-th draw at position t).
func (o *OTR) Rewards(candidates [][]int, targets []int) ([][]float64, error) {
	out := make([][]float64, len(candidates))
	for k, row := range candidates {
		if len(row) != len(targets) {
			return nil, badInput("candidate row %d has %d positions, targets %d", k, len(row), len(targets))
		}
		out[k] = make([]float64, len(row))
		for t, a := range row {
			out[k][t] = o.Beta
			if a == targets[t] {
				out[k][t] = 1
			}
		}
	}
	return out, nil
}

// Weights aggregates one position's K samples by distinct token: weight (n_v/K)·R(v), the coefficient of
// −log π(v)/Ntok in the loss. Ids are in order of first appearance.
func (o *OTR) Weights(samples []int, target int) (ids []int, weights []float64) {
	idx := map[int]int{}
	for _, a := range samples {
		j, ok := idx[a]
		if !ok {
			j = len(ids)
			idx[a] = j
			ids = append(ids, a)
			weights = append(weights, 0)
		}
		r := o.Beta
		if a == target {
			r = 1
		}
		weights[j] += r / float64(len(samples))
	}
	return ids, weights
}

// Advantages returns TokenRewards on valid tokens.
func (o *OTR) Advantages(b *Batch) ([][]float64, error) {
	if err := check(b, needTokenRewards); err != nil {
		return nil, fmt.Errorf("otr needs token_rewards (the one-token rollout rewards): %w", err)
	}
	adv := newLike(b.Mask)
	for i, row := range b.Mask {
		for t, m := range row {
			if m != 0 {
				adv[i][t] = b.TokenRewards[i][t]
			}
		}
	}
	return adv, nil
}

// Inputs implements Objective.
func (o *OTR) Inputs() []string { return (needLogP | needTokenRewards).names() }

// Loss is the token-mean (over Mask, or NormTokens) of −A·LogP.
func (o *OTR) Loss(b *Batch) (Result, error) {
	if err := check(b, needLogP|needAdv); err != nil {
		return Result{}, err
	}
	w := tokenMean(b.Mask, b.NormTokens)
	res := Result{GradLogP: newLike(b.Mask)}
	var valid, match float64
	for i, row := range b.Mask {
		for t, m := range row {
			if m == 0 {
				continue
			}
			a := b.Advantages[i][t]
			valid++
			if a == 1 {
				match++
			}
			res.Loss -= w[i][t] * a * b.LogP[i][t]
			res.GradLogP[i][t] = -w[i][t] * a
		}
	}
	res.Metrics = map[string]float64{"match_frac": match / math.Max(valid, 1), "tokens": valid}
	return res, nil
}

// ExpectedLoss is the exact-expectation variant on logits: with π' = sg(softmax(logits/T_r)),
//
//	L = −(1/Ntok)·Σ_t M[t]·[π'(x_t)·lp(x_t) + β·Σ_{v≠x_t} π'(v)·lp(v)],   lp = log softmax(logits),
//
// and its gradient with respect to the logits, −(1/Ntok)·M[t]·(w − softmax(logits)·Σw) with w the
// bracket's weights. logits[t] is the policy's next-token logits at position t, targets[t] the
// ground-truth token; normTokens > 0 overrides Ntok = Σ mask.
func (o *OTR) ExpectedLoss(logits [][]float64, targets []int, mask []float64, normTokens float64) (float64, [][]float64, error) {
	if len(targets) != len(logits) || len(mask) != len(logits) {
		return 0, nil, badInput("logits has %d positions, targets %d, mask %d: want one each", len(logits), len(targets), len(mask))
	}
	ntok := normTokens
	if ntok <= 0 {
		for _, m := range mask {
			ntok += m
		}
	}
	ntok = math.Max(ntok, 1)
	grad := make([][]float64, len(logits))
	var loss float64
	for t, z := range logits {
		grad[t] = make([]float64, len(z))
		if mask[t] == 0 {
			continue
		}
		if targets[t] < 0 || targets[t] >= len(z) {
			return 0, nil, badInput("target %d at position %d is outside the vocabulary of %d", targets[t], t, len(z))
		}
		pr, err := opTemperedProbs(z, o.Temperature)
		if err != nil {
			return 0, nil, badInput("position %d: %v", t, err)
		}
		p, _ := opTemperedProbs(z, 1)
		var sumW float64
		w := make([]float64, len(z))
		for v := range z {
			w[v] = o.Beta * pr[v]
			if v == targets[t] {
				w[v] = pr[v]
			}
			sumW += w[v]
			if p[v] > 0 {
				loss -= mask[t] * w[v] * math.Log(p[v])
			}
		}
		for v := range z {
			grad[t][v] = -mask[t] * (w[v] - p[v]*sumW) / ntok
		}
	}
	return loss / ntok, grad, nil
}

// opTemperedProbs is softmax(z/T), stable for large logits.
func opTemperedProbs(z []float64, T float64) ([]float64, error) {
	if len(z) == 0 {
		return nil, fmt.Errorf("empty logits")
	}
	m := math.Inf(-1)
	for j, x := range z {
		if math.IsNaN(x) || math.IsInf(x, 1) {
			return nil, fmt.Errorf("logit %d = %v: want a finite number (or -Inf for a banned token)", j, x)
		}
		m = math.Max(m, x/T)
	}
	if math.IsInf(m, -1) {
		return nil, fmt.Errorf("all logits are -Inf")
	}
	p := make([]float64, len(z))
	var s float64
	for j, x := range z {
		p[j] = fmath.Exp(x/T - m)
		s += p[j]
	}
	for j := range p {
		p[j] /= s
	}
	return p, nil
}
