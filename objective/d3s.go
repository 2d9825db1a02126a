package objective

import (
	"fmt"
	"math"
	"sort"
)

// D³S (Wang et al., arXiv 2509.22115). Only the abstract was available: sample-level selection of the
// rollouts that maximise the advantage variance (exact max-variance subset, as PODS), token-level
// selection of the largest |A|·H, and a linear or cosine ramp of both keep ratios to 1 over
// ramp_steps (Batch.Step). Host: GRPO advantages and PPO clip, token-mean.
func init() {
	registerSurrogate("d3s", "D³S (provisional): max-advantage-variance rollout subset and top |A|·H tokens, keep ratios ramped to 1",
		D3SParams{SurrogateParams: DefaultSurrogateParams(), SmpKeep0: 0.5, TokKeep0: 0.5, RampSteps: 100, Schedule: "linear"},
		func() *Surrogate {
			return &Surrogate{adv: advConfig{kind: advGroup}, Ratio: RatioToken, Gate: GateClip}
		},
		func(c *D3SParams, s *Surrogate) (Objective, error) {
			d := D3S{Smp0: c.SmpKeep0, Tok0: c.TokKeep0, Ramp: c.RampSteps, Schedule: c.Schedule}
			if d.Smp0 <= 0 || d.Smp0 > 1 || d.Tok0 <= 0 || d.Tok0 > 1 || d.Ramp < 0 {
				return nil, fmt.Errorf("smp_keep0=%v, tok_keep0=%v: want in (0, 1]; ramp_steps=%d: want >= 0", d.Smp0, d.Tok0, d.Ramp)
			}
			s.selectFn, s.selectNeed = d.Select, needEntropy
			s.declare = needStep // the keep-ratio schedule
			return nil, nil
		})
}

// D3SParams configure d3s: the keep ratios at step 1 and their ramp to 1.
type D3SParams struct {
	SurrogateParams
	SmpKeep0  float64 `param:"smp_keep0"`
	TokKeep0  float64 `param:"tok_keep0"`
	RampSteps int     `param:"ramp_steps"`
	Schedule  string  `param:"schedule" choices:"linear|cosine"`
}

// D3S holds the down-sampling schedule.
type D3S struct {
	Smp0, Tok0 float64 // keep ratios at step 1
	Ramp       int     // steps to reach 1
	Schedule   string  // linear | cosine
}

// Keep returns the sample and token keep ratios at a step.
func (d D3S) Keep(step int) (smp, tok float64) {
	f := 1.0
	if d.Ramp > 0 {
		f = math.Min(math.Max(float64(step-1)/float64(d.Ramp), 0), 1)
	}
	if d.Schedule == "cosine" {
		f = (1 - math.Cos(math.Pi*f)) / 2
	}
	return d.Smp0 + (1-d.Smp0)*f, d.Tok0 + (1-d.Tok0)*f
}

// Select keeps the ceil(k_smp·n) non-empty rows whose (row-mean) advantages have the largest
// population variance, then the ceil(k_tok·n) valid tokens of those rows with the largest |A|·H
// (Batch.Entropy of the rollout policy; ties keep the earlier token).
func (d D3S) Select(b *Batch, adv [][]float64) (Selection, error) {
	if err := check(b, needEntropy); err != nil {
		return Selection{}, err
	}
	if len(adv) != len(b.Mask) {
		return Selection{}, badInput("d3s: advantages have %d rows, mask %d", len(adv), len(b.Mask))
	}
	ks, kt := d.Keep(b.Step)
	lens := rowLens(b.Mask)
	var rows []int
	var vals []float64
	for i, l := range lens {
		if l == 0 {
			continue
		}
		var s float64
		for t, m := range b.Mask[i] {
			s += m * adv[i][t]
		}
		rows = append(rows, i)
		vals = append(vals, s/l)
	}
	sel := Selection{Keep: make([]bool, len(b.Mask)), Mask: newLike(b.Mask), Stats: map[string]float64{"d3s_smp_keep": ks, "d3s_tok_keep": kt}}
	for _, k := range MaxVarianceSubset(vals, int(math.Ceil(ks*float64(len(vals))))) {
		sel.Keep[rows[k]] = true
	}
	type tok struct {
		i, t  int
		score float64
	}
	var toks []tok
	for i, row := range b.Mask {
		for t, m := range row {
			if m != 0 && sel.Keep[i] {
				toks = append(toks, tok{i, t, math.Abs(adv[i][t]) * b.Entropy[i][t]})
			}
		}
	}
	sort.SliceStable(toks, func(x, y int) bool { return toks[x].score > toks[y].score })
	for _, tk := range toks[:int(math.Ceil(kt*float64(len(toks))))] {
		sel.Mask[tk.i][tk.t] = 1
	}
	return sel, nil
}

// MaxVarianceSubset returns the indices of m values whose population variance is largest: the optimum
// is some k smallest plus m-k largest values, so every k = 0..m is tried with prefix sums. Ties keep
// the largest k (more of the smallest values), which reproduces the spec's worked example; the spec's
// prose says "smallest k", which contradicts its own example (docs/objectives.md).
func MaxVarianceSubset(vals []float64, m int) []int {
	n := len(vals)
	if m >= n {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	if m <= 0 {
		return nil
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return vals[order[a]] < vals[order[b]] })
	s1, s2 := make([]float64, n+1), make([]float64, n+1)
	for k, i := range order {
		s1[k+1], s2[k+1] = s1[k]+vals[i], s2[k]+vals[i]*vals[i]
	}
	bestK, best := 0, math.Inf(-1)
	for k := 0; k <= m; k++ {
		sum := s1[k] + s1[n] - s1[n-(m-k)]
		sq := s2[k] + s2[n] - s2[n-(m-k)]
		v := sq/float64(m) - (sum/float64(m))*(sum/float64(m))
		if k == 0 || v >= best-1e-12*math.Max(1, math.Abs(best)) {
			bestK, best = k, math.Max(v, best)
		}
	}
	out := append([]int(nil), order[:bestK]...)
	return append(out, order[n-(m-bestK):]...)
}
