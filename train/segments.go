package train

import (
	"fmt"
	"time"

	"github.com/polo-rl/polo/objective"
	"github.com/polo-rl/polo/rollout"
)

// This file computes segment_spo's segments (SPO-chain): for every response, cutpoints from the
// behaviour probabilities (objective.Cutpoints), and at each cutpoint the Monte-Carlo value V(c), the
// mean reward of K continuations sampled from the policy given the prompt and the response up to the
// cutpoint, within the same max_new_tokens budget as the response itself.

// segmentConfig returns the objective's segment settings when it declares segments.
func segmentConfig(obj objective.Objective) (objective.SegmentConfig, bool) {
	ss, ok := obj.(objective.SegmentSampler)
	if !ok || !objective.Declares(obj, objective.InSegments) {
		return objective.SegmentConfig{}, false
	}
	return ss.SegmentConfig()
}

// checkSegmentRewards refuses reward components that Monte-Carlo values cannot reproduce: V(c) is the
// verifier's weighted score of each continuation, so the response's reward must be that too.
func checkSegmentRewards(c Config, obj objective.Objective) error {
	if _, ok := segmentConfig(obj); !ok {
		return nil
	}
	r := c.Reward
	if len(r.Extra) > 0 || r.HAPO.Weight != 0 || r.DRPO.Weight != 0 || r.AutoRule.Weight != 0 {
		return fmt.Errorf("objective %s: its Monte-Carlo values score continuations with reward.verifier only; remove reward.extra and the shaping components (hapo, drpo, autorule)", c.Algo.Name)
	}
	return nil
}

// segmentStats is what the extra sampling cost: continuations sampled (without padding rows) and
// seconds spent.
type segmentStats struct {
	cutpoints, rollouts int
	seconds             float64
	// SPO-tree: nodes below the roots, tokens sampled, tokens of the leaves' whole responses (what
	// sampling the leaves independently would cost), leaves (segtree.go)
	treeNodes, treeTokens, treePathTokens, treeLeaves int
}

func (s *segmentStats) add(o segmentStats) {
	s.cutpoints, s.rollouts, s.seconds = s.cutpoints+o.cutpoints, s.rollouts+o.rollouts, s.seconds+o.seconds
	s.treeNodes, s.treeTokens, s.treePathTokens, s.treeLeaves = s.treeNodes+o.treeNodes, s.treeTokens+o.treeTokens, s.treePathTokens+o.treePathTokens, s.treeLeaves+o.treeLeaves
}

// scoreSegments fills ob.Segments (ob.OldLogP and ob.Mask must be set). All continuations of a step
// are sampled in one batch, padded to a power of two rows (the decoder compiles one graph per batch
// size), with the budget of the shortest prefix; each is then cut to its own prefix's budget, which
// is the same distribution as sampling with that budget (sampling is autoregressive).
func (r *runner) scoreSegments(b *rolloutBatch, ob *objective.Batch) (st segmentStats, err error) {
	cfg, _ := segmentConfig(r.obj)
	if cfg.Tree != nil { // segtree.go: the values come from the sampled trees
		ob.Segments = make([][]objective.Segment, b.rows())
		for i, row := range b.tree {
			ob.Segments[i] = treeSegments(row, cfg.Tree.Mode)
		}
		return st, nil
	}
	t0 := time.Now()
	defer func() { r.segStats.add(st) }()
	type cut struct{ row, end int }
	var cuts []cut
	ob.Segments = make([][]objective.Segment, b.rows())
	minPrefix := r.cfg.Sampling.MaxNewTokens
	for i := range b.rows() {
		for _, c := range objective.Cutpoints(ob.OldLogP[i], ob.Mask[i], cfg.ProbThreshold, cfg.Interval) {
			cuts = append(cuts, cut{i, c})
			minPrefix = min(minPrefix, c+1)
		}
	}
	st.cutpoints = len(cuts)
	if len(cuts) == 0 {
		return st, nil
	}
	var prompts [][]int32
	for _, c := range cuts {
		prefix := append(append([]int32(nil), b.prompts[c.row]...), b.resps[c.row][:c.end+1]...)
		for range cfg.Samples {
			prompts = append(prompts, prefix)
		}
	}
	n := len(prompts)
	for size := 1; ; size *= 2 {
		if size >= n {
			for len(prompts) < size {
				prompts = append(prompts, prompts[0]) // padding rows, discarded
			}
			break
		}
	}
	s := r.cfg.Sampling
	scfg := rollout.Config{Temperature: s.Temperature, TopK: s.TopK, TopP: s.TopP, MinP: s.MinP,
		MaxNewTokens: s.MaxNewTokens - minPrefix, StopTokens: []int32{r.codec.eos}}
	comps, err := r.sample(prompts, scfg, seedFor(r.cfg.Seed, "segment-sample", r.state.Step+1))
	if err != nil {
		return st, fmt.Errorf("segment continuations: %w", err)
	}
	st.rollouts = n
	for k, c := range cuts {
		budget := s.MaxNewTokens - (c.end + 1)
		var sum float64
		for j := range cfg.Samples {
			toks := comps[k*cfg.Samples+j].Tokens
			toks = toks[:min(len(toks), budget)]
			full := append(append([]int32(nil), b.resps[c.row][:c.end+1]...), toks...)
			sum += r.cfg.Reward.Weight * r.score(r.codec.text(full), b.examples[c.row]).Value
		}
		ob.Segments[c.row] = append(ob.Segments[c.row], objective.Segment{End: c.end, Value: sum / float64(cfg.Samples)})
	}
	st.seconds = time.Since(t0).Seconds()
	return st, nil
}

// segmentMetrics logs the extra sampling of a step (summed over its scoreBatch calls) and resets it.
func (r *runner) segmentMetrics(vals map[string]float64) {
	if _, ok := segmentConfig(r.obj); !ok {
		return
	}
	if tc, _ := r.segmentTree(); tc != nil {
		st := r.segStats
		vals["segment_tree_nodes"] = float64(st.treeNodes)
		vals["segment_tree_leaves"] = float64(st.treeLeaves)
		vals["segment_tree_tokens"] = float64(st.treeTokens)
		vals["segment_tree_path_tokens"] = float64(st.treePathTokens)
		vals["segment_tree_s"] = st.seconds
		r.segStats = segmentStats{}
		return
	}
	vals["segment_cutpoints"] = float64(r.segStats.cutpoints)
	vals["segment_mc_rollouts"] = float64(r.segStats.rollouts)
	vals["segment_mc_s"] = r.segStats.seconds
	r.segStats = segmentStats{}
}
