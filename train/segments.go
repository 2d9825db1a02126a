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

// segmentStats is what the extra sampling cost: continuations sampled and seconds spent.
type segmentStats struct {
	cutpoints, rollouts int
	seconds             float64
}

func (s *segmentStats) add(o segmentStats) {
	s.cutpoints, s.rollouts, s.seconds = s.cutpoints+o.cutpoints, s.rollouts+o.rollouts, s.seconds+o.seconds
}

// scoreSegments fills ob.Segments (ob.OldLogP and ob.Mask must be set).
func (r *runner) scoreSegments(b *rolloutBatch, ob *objective.Batch) (st segmentStats, err error) {
	cfg, _ := segmentConfig(r.obj)
	t0 := time.Now()
	defer func() { r.segStats.add(st) }()
	type cut struct{ row, end int }
	byLen := map[int][]cut{} // continuations grouped by prefix length (their remaining budget differs)
	var lens []int
	ob.Segments = make([][]objective.Segment, b.rows())
	for i := range b.rows() {
		for _, c := range objective.Cutpoints(ob.OldLogP[i], ob.Mask[i], cfg.ProbThreshold, cfg.Interval) {
			n := c + 1 // response tokens in the prefix
			if _, ok := byLen[n]; !ok {
				lens = append(lens, n)
			}
			byLen[n] = append(byLen[n], cut{i, c})
			st.cutpoints++
		}
	}
	s := r.cfg.Sampling
	step := r.state.Step + 1
	for _, n := range lens {
		cuts := byLen[n]
		var prompts [][]int32
		for _, c := range cuts {
			prefix := append(append([]int32(nil), b.prompts[c.row]...), b.resps[c.row][:n]...)
			for range cfg.Samples {
				prompts = append(prompts, prefix)
			}
		}
		scfg := rollout.Config{Temperature: s.Temperature, TopK: s.TopK, TopP: s.TopP, MinP: s.MinP,
			MaxNewTokens: s.MaxNewTokens - n, StopTokens: []int32{r.codec.eos}}
		comps, err := r.sample(prompts, scfg, seedFor(r.cfg.Seed, fmt.Sprintf("segment-%d", n), step))
		if err != nil {
			return st, fmt.Errorf("segment continuations: %w", err)
		}
		st.rollouts += len(comps)
		for k, c := range cuts {
			var sum float64
			for j := range cfg.Samples {
				full := append(append([]int32(nil), b.resps[c.row][:n]...), comps[k*cfg.Samples+j].Tokens...)
				sum += r.cfg.Reward.Weight * r.score(r.codec.text(full), b.examples[c.row]).Value
			}
			ob.Segments[c.row] = append(ob.Segments[c.row], objective.Segment{End: c.end, Value: sum / float64(cfg.Samples)})
		}
	}
	st.seconds = time.Since(t0).Seconds()
	return st, nil
}

// segmentMetrics logs the extra sampling of a step (summed over its scoreBatch calls) and resets it.
func (r *runner) segmentMetrics(vals map[string]float64) {
	if _, ok := segmentConfig(r.obj); !ok {
		return
	}
	vals["segment_cutpoints"] = float64(r.segStats.cutpoints)
	vals["segment_mc_rollouts"] = float64(r.segStats.rollouts)
	vals["segment_mc_s"] = r.segStats.seconds
	r.segStats = segmentStats{}
}
