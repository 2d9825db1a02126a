package objective

import (
	"fmt"
	"math"
)

// CoPG is Contrastive Policy Gradient (Flet-Berliac et al., 2024; spec B4): a squared contrast of
// KL-regularised sequence rewards between the responses of one prompt,
//
//	Rb_i = R_i − β·(S_i − Sref_i),    ℓ_group = 1/(k−1) · Σ_{i>j} (Rb_i − Rb_j)²,
//
// averaged over the groups (prompts) of the batch. The responses may come from any policy (offline
// data, another model, on-policy): there is no importance ratio and no clipping, and its fixed point is
// the KL-regularised optimum π ∝ π_ref·exp(R/β) whatever the sampling distribution.
//
// Input shape: a token Batch, one row per response: LogP (differentiable), RefLogP, Mask, Rewards (R_i,
// any scalar score) and Group (responses of one prompt share it; nil means all rows are one group).
// S_i = Σ_t Mask·LogP. OldLogP is not read. The gradient on every valid token of response i is
// ∂ℓ/∂S_i = −(2β/(k−1))·Σ_{j≠i}(Rb_i − Rb_j) / #groups. Groups with a single response cannot be
// contrasted and take no part (counted in the singleton_groups metric); rows with no valid token take
// no part either (the shared group rule). A micro-batch must hold whole groups; its loss is the mean
// over its own groups.
type CoPG struct {
	Beta float64 `param:"beta"` // KL strength β (spec default 0.1, unverified)
}

func init() {
	RegisterTyped("copg", "Contrastive Policy Gradient: squared contrast of KL-regularised sequence rewards within a prompt's responses (off-policy friendly)",
		CoPG{Beta: 0.1},
		func(c CoPG) (Objective, error) {
			if c.Beta < 0 || math.IsInf(c.Beta, 0) {
				return nil, fmt.Errorf("beta=%g: want a number >= 0", c.Beta)
			}
			return &c, nil
		})
}

// Advantages returns, on every valid token of response i, −∂ℓ_group/∂S_i at the batch's LogP: the
// leave-one-out contrast (2β/(k−1))·Σ_{j≠i}(Rb_i − Rb_j) (0 for β = 0 or singleton groups). It is the
// direction the step pushes log π(y_i); CoPG's Loss recomputes it from the current LogP and does not
// read Batch.Advantages.
func (c *CoPG) Advantages(b *Batch) ([][]float64, error) {
	st, err := c.stats(b)
	if err != nil {
		return nil, err
	}
	adv := newLike(b.Mask)
	for i := range adv {
		for t := range adv[i] {
			adv[i][t] = -st.dS[i] * b.Mask[i][t]
		}
	}
	return adv, nil
}

// Inputs implements Objective.
func (c *CoPG) Inputs() []string { return (needLogP | needRef | needRewards).names() }

// Loss implements Objective.
func (c *CoPG) Loss(b *Batch) (Result, error) {
	st, err := c.stats(b)
	if err != nil {
		return Result{}, err
	}
	ng := math.Max(float64(st.groups), 1)
	res := Result{Loss: st.loss / ng, GradLogP: newLike(b.Mask)}
	for i := range b.Mask {
		for t, m := range b.Mask[i] {
			res.GradLogP[i][t] = st.dS[i] / ng * m
		}
	}
	var rb, kl float64
	for i := range st.rb {
		rb += st.rb[i]
		kl += st.kl[i]
	}
	n := math.Max(float64(len(st.rb)), 1)
	res.Metrics = map[string]float64{
		"reward_reg_mean":  rb / n,
		"seq_kl_mean":      kl / n,
		"groups":           float64(st.groups),
		"singleton_groups": float64(st.singletons),
	}
	return res, nil
}

type copgStats struct {
	rb, kl, dS         []float64 // per row: Rb_i, S_i − Sref_i, ∂(Σ_groups ℓ)/∂S_i
	loss               float64   // Σ over groups
	groups, singletons int
}

func (c *CoPG) stats(b *Batch) (copgStats, error) {
	if err := check(b, needLogP|needRef|needRewards); err != nil {
		return copgStats{}, err
	}
	n := len(b.Mask)
	st := copgStats{rb: make([]float64, n), kl: make([]float64, n), dS: make([]float64, n)}
	for i, row := range b.Mask {
		for t, m := range row {
			if m != 0 {
				kl, _ := KL(KLk1, b.LogP[i][t], b.RefLogP[i][t])
				st.kl[i] += kl // S_i − Sref_i
			}
		}
		st.rb[i] = b.Rewards[i] - c.Beta*st.kl[i]
	}
	for _, rows := range groups(groupOrOne(b), b.Mask) {
		k := len(rows)
		if k < 2 {
			st.singletons++
			continue
		}
		st.groups++
		w := 1 / float64(k-1)
		for a, i := range rows {
			for _, j := range rows[a+1:] {
				d := st.rb[i] - st.rb[j]
				st.loss += w * d * d
				// ∂/∂Rb_i = 2w·d, ∂/∂Rb_j = −2w·d, and ∂Rb/∂S = −β.
				st.dS[i] -= 2 * w * d * c.Beta
				st.dS[j] += 2 * w * d * c.Beta
			}
		}
	}
	return st, nil
}
