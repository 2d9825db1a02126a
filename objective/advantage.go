package objective

import (
	"fmt"
	"math"
	"sort"
)

// Advantage estimator kinds of the shared advantage stage.
const (
	advGroup       = "group"        // (r - μ_g) / scale, scale from adv_std (grpo, dr_grpo, lite_ppo, …)
	advRLOO        = "rloo"         // leave-one-out baseline
	advGAE         = "gae"          // PPO: GAE over token rewards and critic values, then whitening
	advRPP         = "rpp"          // REINFORCE++: returns-to-go, then whitening over the batch
	advRPPBaseline = "rpp_baseline" // REINFORCE++-baseline: group mean removed, then whitening
	advBN          = "bn"           // BN-GSPO: group z-score, then batch z-score (population std)
)

// Singleton-group conventions (parameter singleton).
const (
	SingletonVerl = "verl" // a group of one has mean 0 and std 1, so A = r/(1+eps) (verl, issue default)
	SingletonZero = "zero" // a group of one gets A = 0 (no baseline information)
)

// advConfig is the shared advantage stage: estimator, normalisation and reward-side KL.
type advConfig struct {
	kind          string
	std           string // group | batch | none (kind=group)
	eps           float64
	singleton     string
	beta          float64 // KL coefficient when klIn == "reward"
	klEst, klIn   string
	gamma, lambda float64
	whiten        bool // gae: whiten advantages over the batch
	// overlong shaping (dapo): reward += OverlongPenalty(len, overlongMax, overlongBuf, overlongFactor)
	overlongMax, overlongBuf int
	overlongFactor           float64
}

// need reports which batch fields the stage reads.
func (c advConfig) need() need {
	n := needOld
	switch c.kind {
	case advGAE:
		n |= needRewards | needValues
	case advRPP:
		n |= needRewards
	default:
		n |= needRewards | needGroup
	}
	if c.klIn == "reward" && c.beta != 0 {
		n |= needRef
	}
	return n
}

// rewardKL is the per-token reward penalty β·k(old_logp, ref_logp), or nil when KL is not in the reward.
func (c advConfig) rewardKL(b *Batch) [][]float64 {
	if c.klIn != "reward" || c.beta == 0 {
		return nil
	}
	pen := newLike(b.Mask)
	for i, row := range b.Mask {
		for t, m := range row {
			if m != 0 {
				v, _ := KL(c.klEst, b.OldLogP[i][t], b.RefLogP[i][t])
				pen[i][t] = c.beta * v
			}
		}
	}
	return pen
}

// outcome returns the scalar score per response: reward, plus overlong shaping, plus Σ of dense token
// rewards minus the reward-side KL penalty (verl sums token-level rewards into the outcome score).
func (c advConfig) outcome(b *Batch) []float64 {
	lens := rowLens(b.Mask)
	pen := c.rewardKL(b)
	s := make([]float64, len(b.Mask))
	for i := range s {
		s[i] = b.Rewards[i]
		if c.overlongBuf > 0 {
			n := int(lens[i])
			if len(b.Lengths) > 0 {
				n = b.Lengths[i]
			}
			s[i] += OverlongPenalty(n, c.overlongMax, c.overlongBuf, c.overlongFactor)
		}
		for t, m := range b.Mask[i] {
			if m == 0 {
				continue
			}
			if b.TokenRewards != nil {
				s[i] += b.TokenRewards[i][t]
			}
			if pen != nil {
				s[i] -= pen[i][t]
			}
		}
	}
	return s
}

// tokenRewards places the outcome reward at the last valid token, adds dense rewards and subtracts the
// reward-side KL penalty (ppo, reinforce++).
func (c advConfig) tokenRewards(b *Batch) [][]float64 {
	pen := c.rewardKL(b)
	tr := newLike(b.Mask)
	for i, row := range b.Mask {
		last := lastValid(row)
		for t, m := range row {
			if m == 0 {
				continue
			}
			if b.TokenRewards != nil {
				tr[i][t] += b.TokenRewards[i][t]
			}
			if pen != nil {
				tr[i][t] -= pen[i][t]
			}
		}
		if last >= 0 {
			tr[i][last] += b.Rewards[i]
		}
	}
	return tr
}

func (c advConfig) advantages(b *Batch) ([][]float64, error) {
	if err := check(b, c.need()); err != nil {
		return nil, err
	}
	switch c.kind {
	case advGAE:
		a, _ := GAE(c.tokenRewards(b), b.Values, b.Mask, c.gamma, c.lambda)
		if c.whiten {
			a = Whiten(a, b.Mask)
		}
		return a, nil
	case advRPP:
		return Whiten(ReturnsToGo(c.tokenRewards(b), b.Mask, c.gamma), b.Mask), nil
	}
	s := c.outcome(b)
	var a []float64
	switch c.kind {
	case advGroup:
		a = GroupAdvantages(s, b.Group, b.Mask, c.std, c.eps, c.singleton)
	case advRLOO:
		a = RLOOAdvantages(s, b.Group, b.Mask)
	case advRPPBaseline:
		return Whiten(broadcast(GroupAdvantages(s, b.Group, b.Mask, "none", 0, c.singleton), b.Mask), b.Mask), nil
	case advBN:
		a = BatchRenormalize(GroupAdvantages(s, b.Group, b.Mask, "group", c.eps, c.singleton), b.Mask)
	default:
		return nil, fmt.Errorf("unknown advantage estimator %q", c.kind)
	}
	return broadcast(a, b.Mask), nil
}

// groups returns the member rows of each group, in order of first appearance, leaving out empty rows
// (rows with no valid token take no part in any statistic).
func groups(group []int, mask [][]float64) [][]int {
	lens := rowLens(mask)
	idx := map[int]int{}
	var out [][]int
	for i, g := range group {
		if lens[i] == 0 {
			continue
		}
		k, ok := idx[g]
		if !ok {
			k = len(out)
			idx[g] = k
			out = append(out, nil)
		}
		out[k] = append(out[k], i)
	}
	return out
}

// GroupAdvantages returns (s_i - μ_g)/scale per response with the group mean μ_g and, by stdMode,
// scale = std_g + eps (unbiased group std: grpo), std_batch + eps (unbiased std of all scores: lite_ppo),
// or 1 (none: dr_grpo). A group of one follows singleton (verl: μ = 0, std_g = 1). Empty rows get 0.
func GroupAdvantages(s []float64, group []int, mask [][]float64, stdMode string, eps float64, singleton string) []float64 {
	a := make([]float64, len(s))
	batchStd := 1.0
	if stdMode == "batch" {
		var all []float64
		for _, g := range groups(group, mask) {
			for _, i := range g {
				all = append(all, s[i])
			}
		}
		if len(all) > 1 {
			batchStd = std(all, true)
		}
	}
	for _, g := range groups(group, mask) {
		vals := make([]float64, len(g))
		for k, i := range g {
			vals[k] = s[i]
		}
		mu, sd := mean(vals), std(vals, true)
		if allEqual(vals) { // exact zeros for equal rewards, whatever the rounding of the mean
			mu, sd = vals[0], 0
		}
		if len(g) == 1 {
			if singleton == SingletonZero {
				continue
			}
			mu, sd = 0, 1
		}
		for _, i := range g {
			switch stdMode {
			case "group":
				a[i] = (s[i] - mu) / (sd + eps)
			case "batch":
				a[i] = (s[i] - mu) / (batchStd + eps)
			default:
				a[i] = s[i] - mu
			}
		}
	}
	return a
}

// RLOOAdvantages returns r_i minus the mean of the other responses of its group; a group of one keeps
// A = r (verl).
func RLOOAdvantages(s []float64, group []int, mask [][]float64) []float64 {
	a := make([]float64, len(s))
	for _, g := range groups(group, mask) {
		if len(g) == 1 {
			a[g[0]] = s[g[0]]
			continue
		}
		var sum float64
		for _, i := range g {
			sum += s[i]
		}
		n := float64(len(g))
		for _, i := range g {
			a[i] = s[i] - (sum-s[i])/(n-1)
		}
	}
	return a
}

// BatchRenormalize is BN-GSPO's second stage: (z - mean(z))/(popstd(z) + 1e-9) over the non-empty rows.
func BatchRenormalize(z []float64, mask [][]float64) []float64 {
	lens := rowLens(mask)
	var vals []float64
	for i, l := range lens {
		if l > 0 {
			vals = append(vals, z[i])
		}
	}
	out := make([]float64, len(z))
	if len(vals) == 0 {
		return out
	}
	mu, sd := mean(vals), std(vals, false)
	for i, l := range lens {
		if l > 0 {
			out[i] = (z[i] - mu) / (sd + 1e-9)
		}
	}
	return out
}

// GAE computes generalised advantage estimates and returns right to left over the valid tokens of each
// row: δ_t = r_t + γV_{t+1} - V_t, A_t = δ_t + γλA_{t+1}, R_t = A_t + V_t, with V and A after the last
// valid token 0. Masked positions are skipped (the running values carry across them, as verl) and get 0.
func GAE(tokR, values, mask [][]float64, gamma, lambda float64) (adv, returns [][]float64) {
	adv, returns = newLike(mask), newLike(mask)
	for i, row := range mask {
		nextV, nextA := 0.0, 0.0
		for t := len(row) - 1; t >= 0; t-- {
			if row[t] == 0 {
				continue
			}
			delta := tokR[i][t] + gamma*nextV - values[i][t]
			a := delta + gamma*lambda*nextA
			adv[i][t], returns[i][t] = a, a+values[i][t]
			nextV, nextA = values[i][t], a
		}
	}
	return adv, returns
}

// ReturnsToGo returns G_t = Σ_{k≥t} γ^{k-t} r_k over the valid tokens of each row.
func ReturnsToGo(tokR, mask [][]float64, gamma float64) [][]float64 {
	g := newLike(mask)
	for i, row := range mask {
		run := 0.0
		for t := len(row) - 1; t >= 0; t-- {
			if row[t] == 0 {
				continue
			}
			run = tokR[i][t] + gamma*run
			g[i][t] = run
		}
	}
	return g
}

// OverlongPenalty is DAPO's soft overlong punishment: 0 up to maxLen-buffer tokens, then falling
// linearly to -factor at maxLen (and below beyond it).
func OverlongPenalty(length, maxLen, buffer int, factor float64) float64 {
	if buffer <= 0 {
		return 0
	}
	expected := maxLen - buffer
	return math.Min(-float64(length-expected)/float64(buffer)*factor, 0)
}

// DynamicSamplingKeep is DAPO's group filter: a response is kept iff its group's rewards are not all
// equal (population std > 0) or the group has one response. Empty rows are not kept.
func DynamicSamplingKeep(rewards []float64, group []int, mask [][]float64) []bool {
	keep := make([]bool, len(rewards))
	for _, g := range groups(group, mask) {
		vals := make([]float64, len(g))
		for k, i := range g {
			vals[k] = rewards[i]
		}
		if len(g) == 1 || std(vals, false) > 0 {
			for _, i := range g {
				keep[i] = true
			}
		}
	}
	return keep
}

// quantileNearest returns the q-quantile of xs with "nearest" interpolation (index round(q·(n-1)) of
// the sorted values, half to even as numpy).
func quantileNearest(xs []float64, q float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[int(math.RoundToEven(q*float64(len(s)-1)))]
}

// median with linear interpolation.
func median(xs []float64) float64 { return quantileLinear(xs, 0.5) }

func allEqual(xs []float64) bool {
	for _, x := range xs {
		if x != xs[0] {
			return false
		}
	}
	return true
}
