package train

import (
	"math"
	"testing"

	"github.com/polo-rl/polo/objective"
)

// exactValue is E[reward] of the continuations of prefix (response tokens resp so far) under the
// policy at temperature 1, by enumerating every continuation within the remaining budget (EOS ends
// one): the quantity the Monte-Carlo segment values estimate.
func exactValue(t *testing.T, r *runner, row int, b *rolloutBatch, resp []int32, budget int) float64 {
	t.Helper()
	type node struct {
		toks []int32
		p    float64
	}
	frontier := []node{{append([]int32(nil), resp...), 1}}
	var v float64
	for depth := 0; depth < budget && len(frontier) > 0; depth++ {
		var ids, mask [][]int32
		for _, nd := range frontier {
			seq := append(append([]int32(nil), b.prompts[row]...), nd.toks...)
			ids = append(ids, seq)
			mask = append(mask, ones32(len(seq)))
		}
		logits, err := r.policy.Logits(ids, mask)
		if err != nil {
			t.Fatal(err)
		}
		var next []node
		for k, nd := range frontier {
			ls := logSoftmax64(logits[k][len(ids[k])-1], 1)
			for tok, l := range ls {
				if tok >= r.codec.tok.VocabSize() {
					continue
				}
				child := node{append(append([]int32(nil), nd.toks...), int32(tok)), nd.p * math.Exp(l)}
				if int32(tok) == r.codec.eos || depth == budget-1 {
					v += child.p * r.score(r.codec.text(child.toks), b.examples[row]).Value
				} else {
					next = append(next, child)
				}
			}
		}
		frontier = next
	}
	return v
}

func ones32(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

// TestSegmentValuesMatchEnumeration: the trainer's Monte-Carlo value at each cutpoint (K = 300
// continuations) agrees, within sampling error, with the exact expected reward by enumerating every
// continuation on the tiny vocabulary; segments sit at objective.Cutpoints of the behaviour
// probabilities; the extra sampling is counted.
func TestSegmentValuesMatchEnumeration(t *testing.T) {
	const k = 300
	r := testRunner(t, "algo.name=segment_spo", "algo.set.mc_samples=300", "algo.set.cutpoint_interval=1",
		// A reward the untrained model earns often enough for values away from 0 and 1.
		"reward.verifier=format", `reward.options={pattern: "[0-4]"}`)
	b, _, _, err := r.collect("rollout", 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	b = b.subset([]int{0, 4})
	ob, _, err := r.scoreBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for i := range b.rows() {
		want := objective.Cutpoints(ob.OldLogP[i], ob.Mask[i], 0.9, 1)
		if len(want) != len(ob.Segments[i]) {
			t.Fatalf("row %d: %d segments, cutpoints %v", i, len(ob.Segments[i]), want)
		}
		for j, s := range ob.Segments[i] {
			if s.End != want[j] {
				t.Fatalf("row %d: segment ends at %d, cutpoint %d", i, s.End, want[j])
			}
			n := s.End + 1
			exact := exactValue(t, r, i, b, b.resps[i][:n], r.cfg.Sampling.MaxNewTokens-n)
			se := math.Sqrt(math.Max(exact*(1-exact), 0.01) / k)
			t.Logf("row %d cut %d: MC %.4f, exact %.4f (±%.4f)", i, s.End, s.Value, exact, 4*se)
			if math.Abs(s.Value-exact) > 4*se {
				t.Errorf("row %d cut %d: MC value %.4f, exact %.4f", i, s.End, s.Value, exact)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no cutpoint to check")
	}
	vals := map[string]float64{}
	r.segmentMetrics(vals)
	if vals["segment_mc_rollouts"] != float64(checked*k) || vals["segment_cutpoints"] != float64(checked) {
		t.Errorf("extra sampling logged as %v, want %d cutpoints × %d", vals, checked, k)
	}
}
