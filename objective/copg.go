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
// contrasted and take no part (counted in the singleton_groups metric). A micro-batch must hold whole
// groups; its loss is the mean over its own groups.
type CoPG struct {
	Beta float64 // KL strength β (spec default 0.1, unverified)
}

func init() {
	Register("copg", "Contrastive Policy Gradient: squared contrast of KL-regularised sequence rewards within a prompt's responses (off-policy friendly)",
		Params{"beta": "0.1"},
		func(p Params) (Objective, error) {
			r := reader{p: p}
			c := &CoPG{Beta: r.float("beta")}
			if r.err != nil {
				return nil, r.err
			}
			if c.Beta < 0 || math.IsInf(c.Beta, 0) {
				return nil, fmt.Errorf("beta=%g: want a number >= 0", c.Beta)
			}
			return c, nil
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
	adv := opZeros(b.Mask)
	for i := range adv {
		for t := range adv[i] {
			adv[i][t] = -st.dS[i] * b.Mask[i][t]
		}
	}
	return adv, nil
}

// Loss implements Objective.
func (c *CoPG) Loss(b *Batch) (Result, error) {
	st, err := c.stats(b)
	if err != nil {
		return Result{}, err
	}
	ng := math.Max(float64(st.groups), 1)
	res := Result{Loss: st.loss / ng, GradLogP: opZeros(b.Mask)}
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
	if err := opCheckBatch(b, "ref_logp"); err != nil {
		return copgStats{}, err
	}
	n := len(b.Mask)
	if len(b.Rewards) != n {
		return copgStats{}, badInput("copg needs rewards: %d values for %d rows", len(b.Rewards), n)
	}
	if b.Group != nil && len(b.Group) != n {
		return copgStats{}, badInput("group has %d values for %d rows", len(b.Group), n)
	}
	st := copgStats{rb: make([]float64, n), kl: make([]float64, n), dS: make([]float64, n)}
	members := map[int][]int{}
	var order []int
	for i := 0; i < n; i++ {
		if math.IsNaN(b.Rewards[i]) || math.IsInf(b.Rewards[i], 0) {
			return copgStats{}, badInput("rewards[%d] = %v: want a finite number", i, b.Rewards[i])
		}
		var s, sr float64
		for t, m := range b.Mask[i] {
			s += m * b.LogP[i][t]
			sr += m * b.RefLogP[i][t]
		}
		st.kl[i] = s - sr
		st.rb[i] = b.Rewards[i] - c.Beta*st.kl[i]
		g := 0
		if b.Group != nil {
			g = b.Group[i]
		}
		if _, seen := members[g]; !seen {
			order = append(order, g)
		}
		members[g] = append(members[g], i)
	}
	for _, g := range order {
		rows := members[g]
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

// ---- token-batch helpers shared by the off-policy objectives -------------------------------------

// opCheckBatch validates Mask and LogP and the named optional matrices (old_logp, ref_logp,
// entropy, values, token_rewards, advantages): each must have the mask's shape and finite values where
// the mask is non-zero.
func opCheckBatch(b *Batch, fields ...string) error {
	if b == nil || len(b.Mask) == 0 {
		return badInput("mask is empty: give one row per response")
	}
	for i, row := range b.Mask {
		for t, m := range row {
			if math.IsNaN(m) || math.IsInf(m, 0) || m < 0 {
				return badInput("mask[%d][%d] = %v: want a finite weight >= 0", i, t, m)
			}
		}
	}
	named := map[string][][]float64{
		"logp": b.LogP, "old_logp": b.OldLogP, "ref_logp": b.RefLogP, "entropy": b.Entropy,
		"values": b.Values, "token_rewards": b.TokenRewards, "advantages": b.Advantages,
	}
	for _, f := range append([]string{"logp"}, fields...) {
		if err := opCheckLike(f, named[f], b.Mask); err != nil {
			return err
		}
	}
	return nil
}

func opCheckLike(name string, m, mask [][]float64) error {
	if len(m) != len(mask) {
		return badInput("%s has %d rows, mask has %d: give %s for every response", name, len(m), len(mask), name)
	}
	for i := range mask {
		if len(m[i]) != len(mask[i]) {
			return badInput("%s row %d has %d tokens, mask has %d", name, i, len(m[i]), len(mask[i]))
		}
		for t, x := range m[i] {
			if mask[i][t] != 0 && (math.IsNaN(x) || math.IsInf(x, 0)) {
				return badInput("%s[%d][%d] = %v at a valid token: want a finite number", name, i, t, x)
			}
		}
	}
	return nil
}

// opZeros returns a zero matrix of the same shape as m.
func opZeros(m [][]float64) [][]float64 {
	out := make([][]float64, len(m))
	for i := range m {
		out[i] = make([]float64, len(m[i]))
	}
	return out
}

// opSurrogate adds the clipped policy-gradient surrogate −m·min(ρ·A, clip(ρ, 1−ε, 1+ε)·A) of the rows
// where use(i) is true (all rows when use is nil) to loss and grad, unnormalised; ρ = exp(LogP −
// OldLogP). clip <= 0 gives the plain importance-sampled −m·ρ·A. It returns the valid token weight, the
// weighted ratio sum and the weight of clipped tokens, for metrics and normalisation.
func opSurrogate(b *Batch, adv [][]float64, clip float64, use func(i int) bool, loss *float64, grad [][]float64) (valid, ratioSum, clipped float64) {
	for i, row := range b.Mask {
		if use != nil && !use(i) {
			continue
		}
		for t, m := range row {
			if m == 0 {
				continue
			}
			valid += m
			ratio := math.Exp(b.LogP[i][t] - b.OldLogP[i][t])
			ratioSum += m * ratio
			a := adv[i][t]
			obj, dobj := ratio*a, ratio*a // objective to maximise and its d/dlogp
			if clip > 0 {
				if c := math.Min(math.Max(ratio, 1-clip), 1+clip) * a; c < obj {
					obj, dobj = c, 0
					clipped += m
				}
			}
			*loss -= m * obj
			grad[i][t] -= m * dobj
		}
	}
	return valid, ratioSum, clipped
}

// opScale divides the loss and every gradient entry by n (a token count, at least 1).
func opScale(loss *float64, grad [][]float64, n float64) {
	n = math.Max(n, 1)
	*loss /= n
	for i := range grad {
		for t := range grad[i] {
			grad[i][t] /= n
		}
	}
}
