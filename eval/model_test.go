package eval

import (
	"math"
	"slices"
	"strconv"
	"testing"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/rollout"
)

// TestGenerateOnFixtureModel samples the llama fixture through Generate with the KV-cache decoder
// and checks that each Sample's self-certainty and mean log-prob equal spec C1's formula
// (TokenSelfCertainty) and a direct log-softmax, applied to the full-forward logits of the sampled
// sequences (1e-6), and that Run counts what the judge said.
func TestGenerateOnFixtureModel(t *testing.T) {
	m, err := model.Load("../testdata/models/llama")
	if err != nil {
		t.Fatal(err)
	}
	prompts := [][]int32{{1, 73, 5}, {1, 247, 157, 82}, {1, 9}}
	const n, batch = 4, 8
	cfg := rollout.Config{Temperature: 1, MaxNewTokens: 8, StopTokens: []int32{2}}
	dec, err := m.NewDecoder(batch, 16)
	if err != nil {
		t.Fatal(err)
	}
	comps := make([][]rollout.Completion, len(prompts))
	sample := func(p [][]int32, seed uint64) ([]rollout.Completion, error) { return rollout.Sample(dec, p, cfg, seed) }
	judge := func(i int, c rollout.Completion) (Judgement, error) {
		comps[i] = append(comps[i], c)
		last := c.Tokens[len(c.Tokens)-1]
		a := strconv.Itoa(int(last % 3))
		return Judgement{Answer: &a, Correct: last%3 == 0}, nil
	}
	examples, err := Generate(prompts, n, batch, 3, sample, judge)
	if err != nil {
		t.Fatal(err)
	}
	for i, ex := range examples {
		for j, s := range ex.Samples {
			c := comps[i][j]
			seq := append(slices.Clone(prompts[i]), c.Tokens...)
			mask := make([]int32, len(seq))
			for k := range mask {
				mask[k] = 1
			}
			logits, err := m.Logits([][]int32{seq}, [][]int32{mask})
			if err != nil {
				t.Fatal(err)
			}
			var sc, lp float64
			for k, tok := range c.Tokens {
				logp := logSoftmax(logits[0][len(prompts[i])-1+k])
				sc += TokenSelfCertainty(logp)
				lp += logp[tok]
			}
			sc /= float64(len(c.Tokens))
			lp /= float64(len(c.Tokens))
			if math.Abs(s.SelfCertainty-sc) > 1e-6 || math.Abs(s.MeanLogProb-lp) > 1e-6 {
				t.Fatalf("example %d sample %d: SC %.7f mean logp %.7f; from full logits %.7f %.7f", i, j, s.SelfCertainty, s.MeanLogProb, sc, lp)
			}
		}
	}
	r, err := Run(examples, Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var correct float64
	for _, ex := range examples {
		for _, s := range ex.Samples {
			if s.Correct {
				correct++
			}
		}
	}
	if want := correct / float64(len(prompts)*n); math.Abs(r.PassAt1-want) > 1e-12 {
		t.Fatalf("pass@1 = %v, judge said %v", r.PassAt1, want)
	}
}

func logSoftmax(z []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = max(m, float64(v))
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - m)
	}
	lse := m + math.Log(s)
	out := make([]float64, len(z))
	for i, v := range z {
		out[i] = float64(v) - lse
	}
	return out
}
