package rollout

import (
	"math"
	"slices"
	"testing"
)

func TestTopPNucleus(t *testing.T) {
	// probabilities 0.5, 0.25, 0.125, 0.125 (ids 2, 0, 1, 3).
	l := func(p float64) float32 { return float32(math.Log(p)) }
	z := []float32{l(0.25), l(0.125), l(0.5), l(0.125)}
	for _, c := range []struct {
		p      float64
		always []int32
		want   []int32
	}{
		{0.4, nil, []int32{2}},           // mass before id 2: 0 ≤ 0.4 → kept; before id 0: 0.5 > 0.4
		{0.55, nil, []int32{0, 2}},       // before id 0: 0.5 ≤ 0.55 → kept (the crossing token)
		{0.7, nil, []int32{0, 2}},        // before id 1: 0.75 > 0.7
		{0.8, nil, []int32{0, 1, 2}},     // before id 1: 0.75 ≤ 0.8; before id 3: 0.875 > 0.8
		{1, nil, []int32{0, 1, 2, 3}},    // everything
		{0.4, []int32{3}, []int32{2, 3}}, // stop token always kept
	} {
		got, err := TopPNucleus(z, c.p, c.always)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("p=%v always=%v: got %v (%v), want %v", c.p, c.always, got, err, c.want)
		}
	}
	if _, err := TopPNucleus(z, 0, nil); err == nil {
		t.Error("p = 0 accepted")
	}
}

// nucleusDecoder returns the same logits at every step.
type nucleusDecoder struct{ z [][]float32 }

func (f nucleusDecoder) Prefill(p [][]int32) ([][]float32, error) { return f.z, nil }
func (f nucleusDecoder) Step([]int32) ([][]float32, error)        { return f.z, nil }

// TestMaskedDecoderSamplesInsideNucleus: the policy prefers token 3, the masking policy's nucleus is
// {0, 1}: every sampled token is 0 or 1 and its behaviour log-prob is normalised over the nucleus.
func TestMaskedDecoderSamplesInsideNucleus(t *testing.T) {
	pol := nucleusDecoder{z: [][]float32{{0, 1, -1, 5}}}
	msk := nucleusDecoder{z: [][]float32{{3, 2.5, -4, -4}}}
	d := &MaskedDecoder{Policy: pol, Mask: msk, TopP: 0.9}
	cfg := DefaultConfig()
	cfg.MaxNewTokens = 50
	comps, err := Sample(d, [][]int32{{1}}, cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	c := comps[0]
	lse := math.Log(math.Exp(0) + math.Exp(1))
	seen := map[int32]int{}
	for k, tok := range c.Tokens {
		if tok > 1 {
			t.Fatalf("token %d sampled outside the nucleus", tok)
		}
		want := []float64{0 - lse, 1 - lse}[tok]
		if math.Abs(float64(c.ModelLogProbs[k])-want) > 1e-6 || math.Abs(float64(c.LogProbs[k])-want) > 1e-6 {
			t.Fatalf("token %d: logp %v / %v, want %v", k, c.ModelLogProbs[k], c.LogProbs[k], want)
		}
		if !slices.Equal(d.Sets[0][k], []int32{0, 1}) {
			t.Fatalf("step %d nucleus %v", k, d.Sets[0][k])
		}
		seen[tok]++
	}
	if seen[0] == 0 || seen[1] == 0 {
		t.Errorf("both nucleus tokens should be drawn in 50 steps: %v", seen)
	}
}
