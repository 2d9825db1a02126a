package objective

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/polo-rl/polo/internal/fmath"
)

// Segment Policy Optimization, chain variant (Guo et al., arXiv 2505.23564): advantages from
// Monte-Carlo values at probability-guided cutpoints (input segments), trained only on tokens the
// behaviour policy found uncertain (p_old ≤ prob_threshold).
func init() {
	registerSurrogate("segment_spo", "Segment PO (chain, or tree with variant=tree): segment advantages V(end) - V(start) from MC values at cutpoints or tree nodes (input segments), low-probability token mask",
		SegmentSPOParams{PolicyParams: DefaultPolicyParams(), ProbThreshold: 0.9, CutpointInterval: 5, MCSamples: 9,
			Variant: "chain", TreeBranching: "6x6x6", TreeSegmentLen: 600, TreeAdv: "rloo"},
		func() *Surrogate { return &Surrogate{Ratio: RatioToken, Gate: GateClip} },
		func(c *SegmentSPOParams, s *Surrogate) (Objective, error) {
			thr := c.ProbThreshold // cutpoint_interval is used by the sampler through Cutpoints
			if thr <= 0 || thr > 1 {
				return nil, fmt.Errorf("prob_threshold=%v: want in (0, 1]", thr)
			}
			if c.CutpointInterval < 1 || c.MCSamples < 1 {
				return nil, fmt.Errorf("cutpoint_interval=%d, mc_samples=%d: want >= 1", c.CutpointInterval, c.MCSamples)
			}
			s.segments = &SegmentConfig{ProbThreshold: thr, Interval: c.CutpointInterval, Samples: c.MCSamples}
			if c.Variant == "tree" {
				br, err := parseBranching(c.TreeBranching)
				if err != nil {
					return nil, err
				}
				if c.TreeSegmentLen < 1 {
					return nil, fmt.Errorf("tree_segment_len=%d: want >= 1", c.TreeSegmentLen)
				}
				s.segments.Tree = &TreeConfig{Branching: br, SegmentLen: c.TreeSegmentLen, Mode: c.TreeAdv}
			}
			s.advNeed = needRewards | needSegments | needOld
			s.advFn = func(b *Batch) ([][]float64, error) {
				if err := check(b, needRewards|needSegments|needOld); err != nil {
					return nil, err
				}
				a := newLike(b.Mask)
				for i, row := range b.Mask {
					adv, err := SegmentAdvantages(b.Segments[i], row, b.Rewards[i])
					if err != nil {
						return nil, fmt.Errorf("%w: segments[%d]: %v", ErrBadInput, i, err)
					}
					for t := range row {
						if fmath.Exp(b.OldLogP[i][t]) <= thr {
							a[i][t] = adv[t]
						}
					}
				}
				return a, nil
			}
			s.selectFn = func(b *Batch, _ [][]float64) (Selection, error) {
				sel := Selection{Keep: make([]bool, len(b.Mask)), Mask: newLike(b.Mask), Stats: map[string]float64{}}
				var kept, all float64
				for i, row := range b.Mask {
					sel.Keep[i] = true
					for t, m := range row {
						if m != 0 {
							all++
							if fmath.Exp(b.OldLogP[i][t]) <= thr {
								sel.Mask[i][t] = 1
								kept++
							}
						}
					}
				}
				if all > 0 {
					sel.Stats["segment_token_keep_frac"] = kept / all
				}
				return sel, nil
			}
			return nil, nil
		})
}

// SegmentSPOParams configure segment_spo: the old-policy probability at or below which a token is
// trained, and the cutpoint spacing the sampler uses (Cutpoints).
type SegmentSPOParams struct {
	PolicyParams
	ProbThreshold    float64 `param:"prob_threshold"`
	CutpointInterval int     `param:"cutpoint_interval"`
	MCSamples        int     `param:"mc_samples"` // K continuations per cutpoint (the trainer samples them)
	// SPO-tree (variant=tree): the trainer samples a tree per prompt instead of a group, branching
	// b_1×b_2×…×b_D children per level (tree_branching, "6x6x6" as the paper's MATH config), each
	// edge at most tree_segment_len tokens except the last level's, which generates freely.
	Variant        string `param:"variant" choices:"chain|tree"`
	TreeBranching  string `param:"tree_branching"`
	TreeSegmentLen int    `param:"tree_segment_len"`
	// tree_adv: rloo (V(child) − V(parent), the default) or grpo (divided by the std of the
	// parent's children's values + 1e-8).
	TreeAdv string `param:"tree_adv" choices:"rloo|grpo"`
}

// TreeConfig is SPO-tree's sampling: Branching[d] children per node at depth d (the root, the
// prompt, is depth 0), edges of at most SegmentLen tokens except at the last level.
type TreeConfig struct {
	Branching  []int
	SegmentLen int
	Mode       string // rloo | grpo (TreeAdvantages)
}

// parseBranching reads "6x6x6" (or "6,6,6").
func parseBranching(s string) ([]int, error) {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == 'x' || r == ',' }) {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("tree_branching=%q: want children per level like 6x6x6, each >= 1", s)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("tree_branching=%q: want children per level like 6x6x6", s)
	}
	return out, nil
}

// SegmentConfig tells the trainer how to compute segment_spo's segments: cutpoints from the
// behaviour probabilities (Cutpoints) and the mean reward of Samples continuations from each.
type SegmentConfig struct {
	ProbThreshold float64
	Interval      int
	Samples       int
	Tree          *TreeConfig // nil: the chain variant
}

// SegmentSampler is implemented by objectives that read segments (segment_spo).
type SegmentSampler interface {
	SegmentConfig() (SegmentConfig, bool)
}

// SegmentConfig implements SegmentSampler.
func (s *Surrogate) SegmentConfig() (SegmentConfig, bool) {
	if s.segments == nil {
		return SegmentConfig{}, false
	}
	return *s.segments, true
}

// Cutpoints returns the chain cutpoints of one response: candidates are tokens j with p_old < thr;
// the cutpoint is the state before token j, index j-1 (-1 = the prompt); every interval-th candidate
// is kept, starting from the first.
func Cutpoints(oldLogP, mask []float64, thr float64, interval int) []int {
	var out []int
	n := 0
	for j, m := range mask {
		if m == 0 || fmath.Exp(oldLogP[j]) >= thr {
			continue
		}
		if n%max(interval, 1) == 0 {
			out = append(out, j-1)
		}
		n++
	}
	return out
}

// SegmentAdvantages assigns every valid token the advantage of its segment. Boundaries are the given
// cutpoints (End, Value) plus the final state after the last valid token with value reward; the
// segment ending at a boundary covers the tokens after the previous boundary up to and including it,
// and its advantage is V(boundary) - V(previous), divided by the previous boundary's Scale when > 0.
// Without a cutpoint at -1 the first segment has advantage 0.
func SegmentAdvantages(segs []Segment, mask []float64, reward float64) ([]float64, error) {
	last := lastValid(mask)
	bs := append([]Segment(nil), segs...)
	sort.SliceStable(bs, func(a, b int) bool { return bs[a].End < bs[b].End })
	for k, s := range bs {
		if s.End < -1 || s.End >= last || (k > 0 && s.End == bs[k-1].End) || math.IsNaN(s.Value) || !(s.Scale >= 0) || math.IsInf(s.Scale, 0) {
			return nil, fmt.Errorf("cutpoint end %d: want distinct indices in [-1, %d), a finite value and a finite scale >= 0", s.End, last)
		}
	}
	bs = append(bs, Segment{End: last, Value: reward})
	adv := make([]float64, len(mask))
	prevEnd, prevV, prevScale, hasPrev := -1, 0.0, 0.0, false
	for _, s := range bs {
		a := 0.0
		if hasPrev {
			a = s.Value - prevV
			if prevScale > 0 {
				a /= prevScale
			}
		}
		for t := prevEnd + 1; t <= s.End; t++ {
			if mask[t] != 0 {
				adv[t] = a
			}
		}
		prevEnd, prevV, prevScale, hasPrev = s.End, s.Value, s.Scale, true
	}
	return adv, nil
}

// TreeAdvantages is SPO-tree's edge advantage for one parent: V(parent) = mean of the children's
// values; rloo mode gives V(child) - V(parent), grpo mode divides by the children's unbiased std +
// 1e-8. keep is false for edges with zero advantage (they are dropped).
func TreeAdvantages(children []float64, mode string) (adv []float64, keep []bool) {
	v := mean(children)
	sd := std(children, true)
	adv, keep = make([]float64, len(children)), make([]bool, len(children))
	for i, c := range children {
		adv[i] = c - v
		if mode == "grpo" {
			adv[i] /= sd + 1e-8
		}
		keep[i] = adv[i] != 0
	}
	return adv, keep
}
