package objective

import (
	"fmt"
	"math"

	"github.com/polo-rl/polo/internal/fmath"
)

// DisCO (Li et al., arXiv 2505.12366): a discriminative objective per question — positives' scores up,
// negatives' scores down (mean, or τ·log-mean-exp for the DRO form) — with no clipping, and a
// squared-hinge KL constraint. Binary rewards; Loss reads Rewards and Group, so a mini-batch must hold
// whole groups, and the constraint is not additive: call Loss on the whole mini-batch.
func init() {
	RegisterTyped("disco", "DisCO: discriminative score objective per question (logL or Lratio; dro or basic), squared-hinge KL constraint",
		DisCOParams{Score: "logL", Objective: "dro", Delta: 1e-4, Beta: 1e3, KLType: "kl"},
		func(c DisCOParams) (Objective, error) {
			d := &DisCO{Score: c.Score, DRO: c.Objective == "dro", Tau: c.Tau, Delta: c.Delta, Beta: c.Beta, KLType: c.KLType}
			if d.Tau == 0 { // the reference scripts' defaults
				d.Tau = map[string]float64{"logL": 10, "Lratio": 1}[d.Score]
			}
			if d.Tau < 0 || d.Beta < 0 || d.Delta < 0 {
				return nil, fmt.Errorf("tau=%v, beta=%v, delta=%v: want >= 0", d.Tau, d.Beta, d.Delta)
			}
			return d, nil
		})
}

// DisCOParams configure disco: the score, the objective form, the DRO temperature (0: the reference
// default of the score), the KL budget and hinge penalty, and the KL estimate.
type DisCOParams struct {
	Score     string  `param:"score" choices:"logL|Lratio"`
	Objective string  `param:"objective" choices:"dro|basic"`
	Tau       float64 `param:"tau"`
	Delta     float64 `param:"delta"`
	Beta      float64 `param:"beta" format:"exp"`
	KLType    string  `param:"kl_type" choices:"kl|low_var_kl"`
}

// DisCO is the disco objective.
type DisCO struct {
	Score  string  // logL: mean token logp; Lratio: mean token ratio
	DRO    bool    // log-sum-exp over negatives (DisCO) instead of their mean (DisCO-b)
	Tau    float64 // DRO temperature
	Delta  float64 // KL budget δ
	Beta   float64 // hinge penalty β
	KLType string  // kl: mean(old - logp); low_var_kl: mean(ρ - 1 - log ρ)
}

// Advantages returns the binary rewards broadcast to the tokens (DisCO has no advantages; the trainer's
// flow still stores them, and zero_adv metrics stay meaningful). Rewards must be 0 or 1.
// Inputs implements Objective.
func (d *DisCO) Inputs() []string { return (needLogP | needOld | needRewards | needGroup).names() }

func (d *DisCO) Advantages(b *Batch) ([][]float64, error) {
	if err := check(b, needRewards|needGroup); err != nil {
		return nil, err
	}
	if err := checkBinary(b.Rewards); err != nil {
		return nil, err
	}
	return broadcast(b.Rewards, b.Mask), nil
}

func checkBinary(r []float64) error {
	for i, v := range r {
		if v != 0 && v != 1 {
			return badInput("disco: rewards[%d] = %v: DisCO needs binary rewards (0 or 1)", i, v)
		}
	}
	return nil
}

// Loss implements Objective: -(1/Q) Σ_q J_q + (β/2)·max(D - δ, 0)², Q = all questions of the batch
// (or NormRows when set). The value is the true objective (the reference code's value-1 surrogate has
// the same gradient).
func (d *DisCO) Loss(b *Batch) (Result, error) {
	if err := check(b, needLogP|needOld|needRewards|needGroup); err != nil {
		return Result{}, err
	}
	if err := checkBinary(b.Rewards); err != nil {
		return Result{}, err
	}
	lens := rowLens(b.Mask)
	score := make([]float64, len(b.Mask))
	for i, row := range b.Mask {
		for t, m := range row {
			if m == 0 {
				continue
			}
			if d.Score == "logL" {
				score[i] += b.LogP[i][t]
			} else {
				x, _ := TokenRatio(b.LogP[i][t], b.OldLogP[i][t])
				score[i] += x
			}
		}
		if lens[i] > 0 {
			score[i] /= lens[i]
		}
	}
	gs := groups(b.Group, b.Mask)
	q := float64(len(gs))
	if b.NormRows > 0 {
		q = b.NormRows
	}
	res := Result{GradLogP: newLike(b.Mask), Metrics: map[string]float64{}}
	dJ := make([]float64, len(b.Mask)) // dJ/ds_i
	var j float64
	for _, g := range gs {
		var pos, neg []int
		for _, i := range g {
			if b.Rewards[i] == 1 {
				pos = append(pos, i)
			} else {
				neg = append(neg, i)
			}
		}
		if len(pos) == 0 || len(neg) == 0 {
			continue
		}
		for _, i := range pos {
			j += score[i] / float64(len(pos)) / q
			dJ[i] = 1 / (q * float64(len(pos)))
		}
		if !d.DRO {
			for _, i := range neg {
				j -= score[i] / float64(len(neg)) / q
				dJ[i] = -1 / (q * float64(len(neg)))
			}
			continue
		}
		m := math.Inf(-1)
		for _, i := range neg {
			m = math.Max(m, score[i]/d.Tau)
		}
		var z float64
		for _, i := range neg {
			z += fmath.Exp(score[i]/d.Tau - m)
		}
		j -= d.Tau * (m + math.Log(z/float64(len(neg)))) / q
		for _, i := range neg {
			dJ[i] = -fmath.Exp(score[i]/d.Tau-m) / z / q
		}
	}
	// KL constraint D over all valid tokens.
	var nTok, kl float64
	for i, row := range b.Mask {
		for t, m := range row {
			if m == 0 {
				continue
			}
			nTok++
			if d.KLType == "kl" {
				kl += b.OldLogP[i][t] - b.LogP[i][t]
			} else {
				x, _ := TokenRatio(b.LogP[i][t], b.OldLogP[i][t])
				kl += x - 1 - math.Log(x)
			}
		}
	}
	if b.NormTokens > 0 {
		nTok = b.NormTokens
	}
	kl /= nTok
	hinge := math.Max(kl-d.Delta, 0)
	res.Loss = -j + d.Beta/2*hinge*hinge
	for i, row := range b.Mask {
		for t, m := range row {
			if m == 0 {
				continue
			}
			x, dx := TokenRatio(b.LogP[i][t], b.OldLogP[i][t])
			ds := 1 / lens[i]
			if d.Score == "Lratio" {
				ds = dx / lens[i]
			}
			dD := -1 / nTok
			if d.KLType != "kl" {
				dD = (x - 1) / x * dx / nTok
			}
			res.GradLogP[i][t] = -dJ[i]*ds + d.Beta*hinge*dD
		}
	}
	res.Metrics["disco_j"] = j
	res.Metrics["disco_kl"] = kl
	res.Metrics["disco_penalty_mult"] = d.Beta * hinge
	batchMetrics(b, "", res.Metrics)
	return res, nil
}
