package objective

import "math"

// GTPO (Simoni et al., arXiv 2508.03772): entropy-gated, entropy-shaped GRPO advantage and
// conflict-token weights λ, folded into per-token advantages; unclipped on-policy ratio; SMTM.
func init() {
	registerSurrogate("gtpo", "GTPO: entropy-shaped advantage, conflict-token weights (protect shared prefixes/suffixes), no clipping",
		GTPOParams{SurrogateParams: group(func(p *SurrogateParams) { p.Agg = AggSeqMeanTokenMean }),
			EntThreshold: 0.7, EntScale: 0.1, WRaw: 2, Conflict: "prefix"},
		func() *Surrogate {
			return &Surrogate{adv: advConfig{kind: advGroup}, Ratio: RatioToken, Gate: GateRatio}
		},
		func(c *GTPOParams, s *Surrogate) (Objective, error) {
			g := gtpo{thr: c.EntThreshold, scale: c.EntScale, w: c.WRaw, hIni: c.HIni,
				all: c.Conflict == "all", repoNorm: c.RepoNorm, base: s.adv}
			s.advFn, s.advNeed = g.advantages, needRewards|needGroup|needEntropy|needTokenIDs
			return nil, nil
		})
}

// GTPOParams configure gtpo: the entropy gate and shaping, the conflict-token weight and which
// shared tokens count as conflicts.
type GTPOParams struct {
	SurrogateParams
	EntThreshold float64 `param:"ent_threshold"`
	EntScale     float64 `param:"ent_scale"`
	WRaw         float64 `param:"w_raw"`
	HIni         float64 `param:"h_ini"`
	Conflict     string  `param:"conflict" choices:"prefix|all"`
	RepoNorm     bool    `param:"repo_norm"`
}

type gtpo struct {
	thr, scale, w, hIni float64
	all, repoNorm       bool
	base                advConfig
}

// advantages returns δ_i·(A_i - ent_scale·H̄_i)·λ[i,t] (divided by n_conf_i with repo_norm), where
// H̄_i is the mean rollout entropy of row i and δ_i = 1[H̄_i ≤ ent_threshold] (always 1 when the
// initial model's mean entropy h_ini exceeds the threshold: the paper's rule).
func (g gtpo) advantages(b *Batch) ([][]float64, error) {
	if err := check(b, needRewards|needGroup|needEntropy|needTokenIDs); err != nil {
		return nil, err
	}
	a := GroupAdvantages(g.base.outcome(b), b.Group, b.Mask, g.base.std, g.base.eps, g.base.singleton)
	lam, nconf := ConflictWeights(b.TokenIDs, b.Mask, a, b.Group, g.w, g.all)
	lens := rowLens(b.Mask)
	out := newLike(b.Mask)
	for i, row := range b.Mask {
		if lens[i] == 0 {
			continue
		}
		var h float64
		for t, m := range row {
			h += m * b.Entropy[i][t]
		}
		h /= lens[i]
		if h > g.thr && !(g.hIni > g.thr) {
			continue // δ_i = 0
		}
		shaped := a[i] - g.scale*h
		if g.repoNorm {
			shaped /= nconf[i]
		}
		for t, m := range row {
			if m != 0 {
				out[i][t] = shaped * lam[i][t]
			}
		}
	}
	return out, nil
}

// ConflictWeights returns GTPO's token weights λ and conflict counts n_conf (≥ 1). Within each group,
// a (position, token id) pair is shared when it occurs in a row with A > 0 and in a row with A < 0;
// positions are counted from the start (forward) and from each row's last valid token (backward).
// With all=false (reference code) only the leading run of shared positions is a conflict; with
// all=true (paper) every shared position is. A conflict token weighs w in a positive row and 0 in a
// negative one; λ = λ_fwd·λ_bwd. Rows with A = 0 get λ = 1.
func ConflictWeights(ids [][]int, mask [][]float64, adv []float64, group []int, w float64, all bool) (lam [][]float64, nconf []float64) {
	lam = newLike(mask)
	nconf = make([]float64, len(mask))
	conf := make([][]bool, len(mask))
	// valid token ids of each row, in order
	seq := make([][]int, len(mask))
	pos := make([][]int, len(mask))
	for i, row := range mask {
		conf[i] = make([]bool, len(row))
		for t, m := range row {
			if m != 0 {
				seq[i] = append(seq[i], ids[i][t])
				pos[i] = append(pos[i], t)
			}
			lam[i][t] = 1
		}
	}
	type key struct{ k, id int }
	for _, g := range groups(group, mask) {
		for _, backward := range []bool{false, true} {
			at := func(i, k int) int { // token id at offset k (from the end when backward)
				if backward {
					return seq[i][len(seq[i])-1-k]
				}
				return seq[i][k]
			}
			inPos, inNeg := map[key]bool{}, map[key]bool{}
			for _, i := range g {
				for k := range seq[i] {
					if adv[i] > 0 {
						inPos[key{k, at(i, k)}] = true
					} else if adv[i] < 0 {
						inNeg[key{k, at(i, k)}] = true
					}
				}
			}
			for _, i := range g {
				if adv[i] == 0 {
					continue
				}
				for k := range seq[i] {
					kk := key{k, at(i, k)}
					if !(inPos[kk] && inNeg[kk]) {
						if all {
							continue
						}
						break // the leading run ends
					}
					t := pos[i][k]
					if backward {
						t = pos[i][len(seq[i])-1-k]
					}
					conf[i][t] = true
					if adv[i] > 0 {
						lam[i][t] *= w
					} else {
						lam[i][t] = 0
					}
				}
			}
		}
	}
	for i := range nconf {
		for _, c := range conf[i] {
			if c {
				nconf[i]++
			}
		}
		nconf[i] = math.Max(nconf[i], 1)
	}
	return lam, nconf
}
