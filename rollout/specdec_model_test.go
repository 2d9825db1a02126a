package rollout

import (
	"math"
	"slices"
	"testing"

	"github.com/polo-rl/polo/model"
)

// With real models (a 2-layer target and a different 2-layer draft), greedy speculative decoding
// through model.Logits / model.LogitsHidden with right-padded ragged rows gives exactly the tokens
// the target's KV-cache decoder gives, and the recorded log-probs match.
func TestSpecSampleModelGreedy(t *testing.T) {
	cfg, err := model.Preset("tiny", 11)
	if err != nil {
		t.Fatal(err)
	}
	target, _ := model.New(cfg, 1)
	draft, _ := model.New(cfg, 2)
	prompts := [][]int32{{0, 3, 4}, {1}, {2, 5, 6, 7, 8}}
	sc := Config{Temperature: 0, MaxNewTokens: 7, StopTokens: []int32{10}}
	dec, err := target.NewDecoder(len(prompts), 16)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Sample(dec, prompts, sc, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{1, 3} {
		got, st, err := SpecSample(target, draft, prompts, SpecConfig{Sampling: sc, K: k}, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if !slices.Equal(got[i].Tokens, want[i].Tokens) || got[i].Finish != want[i].Finish {
				t.Fatalf("K=%d row %d: %v %s, want %v %s", k, i, got[i].Tokens, got[i].Finish, want[i].Tokens, want[i].Finish)
			}
			for j := range want[i].ModelLogProbs {
				if d := got[i].ModelLogProbs[j] - want[i].ModelLogProbs[j]; d > 1e-4 || d < -1e-4 {
					t.Fatalf("K=%d row %d token %d: log-prob %v vs %v", k, i, j, got[i].ModelLogProbs[j], want[i].ModelLogProbs[j])
				}
			}
		}
		if st.TargetCalls == 0 || st.Rounds < st.TargetCalls {
			t.Fatalf("stats %+v", st)
		}
	}
}

// Sampling with real models in one batch of ragged rows (two prompts of different lengths, so
// rows are padded) and the adaptive length: the 2-token sequences follow the target's exact joint
// distribution (chi-square per prompt).
func TestSpecSampleModelChiSquare(t *testing.T) {
	cfg, err := model.Preset("tiny", 5)
	if err != nil {
		t.Fatal(err)
	}
	target, _ := model.New(cfg, 3)
	draft, _ := model.New(cfg, 4)
	// Sharpen both models a little so that acceptance is neither 0 nor 1.
	head := NewAcceptHead(cfg.HiddenSize, 1, 9)
	head.Bo = 0.5
	pa, pb := []int32{1}, []int32{2, 3, 4}
	const N = 3000
	prompts := make([][]int32, 2*N)
	for i := range prompts {
		prompts[i] = pa
		if i%2 == 1 {
			prompts[i] = pb
		}
	}
	sc := Config{Temperature: 0.5, MaxNewTokens: 2}
	comps, st, err := SpecSample(target, draft, prompts, SpecConfig{Sampling: sc, Head: head, Threshold: 0.5, KMin: 1, KMax: 2}, 5)
	if err != nil {
		t.Fatal(err)
	}
	for pi, p := range [][]int32{pa, pb} {
		// Exact joint: p(x1) p(x2 | x1) from full forward passes of the target.
		want := map[[2]int32]float64{}
		l1, _ := target.Logits([][]int32{p}, [][]int32{ones(len(p))})
		d1, _ := Transform(l1[0][len(p)-1], sc)
		for a := range d1 {
			seq := append(slices.Clone(p), int32(a))
			l2, _ := target.Logits([][]int32{seq}, [][]int32{ones(len(seq))})
			d2, _ := Transform(l2[0][len(seq)-1], sc)
			for b := range d2 {
				want[[2]int32{int32(a), int32(b)}] = math.Exp(d1[a] + d2[b])
			}
		}
		got := map[[2]int32]float64{}
		for i := pi; i < len(comps); i += 2 {
			got[[2]int32{comps[i].Tokens[0], comps[i].Tokens[1]}]++
		}
		var chi, restE, rest float64
		df := -1
		for k, pr := range want {
			e := pr * N
			if e < 5 {
				restE += e
				rest += got[k]
				continue
			}
			chi += (got[k] - e) * (got[k] - e) / e
			df++
		}
		if restE > 0 {
			chi += (rest - restE) * (rest - restE) / restE
			df++
		}
		p := chiSquarePValue(chi, df)
		t.Logf("prompt %d: χ² = %.1f, df %d, p = %.3f (accept rate %.3f)", pi, chi, df, p, st.AcceptRate())
		if p < 1e-3 {
			t.Fatalf("prompt %d: χ² = %.1f with %d df, p = %g", pi, chi, df, p)
		}
	}
}

func ones(n int) []int32 {
	m := make([]int32, n)
	for i := range m {
		m[i] = 1
	}
	return m
}
