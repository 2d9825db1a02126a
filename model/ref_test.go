package model

import (
	"math"
	"path/filepath"
	"testing"
)

// fixtures are the transformers reference checkpoints; fullFixtures also hold next-token
// logprobs, greedy decoding, loss and gradients (llama-bf16 holds logits only).
var (
	fixtures     = []string{"llama", "llama-tied", "qwen2", "qwen3", "llama-bf16"}
	fullFixtures = []string{"llama", "llama-tied", "qwen2", "qwen3"}
)

func fixtureDir(name string) string { return filepath.Join("..", "testdata", "models", name) }

type reference struct {
	ids, mask [][]int32
	t         map[string]hostTensor
}

func loadReference(t *testing.T, name string) (*Model, *reference) {
	t.Helper()
	m, err := Load(fixtureDir(name))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := readSafetensors(filepath.Join(fixtureDir(name), "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	r := &reference{t: ts}
	r.ids = rows(ts["input_ids"])
	r.mask = rows(ts["attention_mask"])
	return m, r
}

func rows(h hostTensor) [][]int32 {
	out := make([][]int32, h.Shape[0])
	for i := range out {
		out[i] = h.I32[i*h.Shape[1] : (i+1)*h.Shape[1]]
	}
	return out
}

func TestLogitsParity(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			m, r := loadReference(t, name)
			got, err := m.Logits(r.ids, r.mask)
			if err != nil {
				t.Fatal(err)
			}
			want := r.t["logits"]
			v := want.Shape[2]
			maxDiff := 0.0
			for b := range r.ids {
				for p := range r.ids[b] {
					if r.mask[b][p] == 0 {
						continue
					}
					for k := 0; k < v; k++ {
						d := math.Abs(float64(got[b][p][k] - want.F32[(b*len(r.ids[b])+p)*v+k]))
						maxDiff = math.Max(maxDiff, d)
					}
				}
			}
			t.Logf("max |logit diff| = %.3g", maxDiff)
			if maxDiff > 1e-4 {
				t.Errorf("max |logit diff| = %.3g > 1e-4", maxDiff)
			}
		})
	}
}

func TestLogProbsParity(t *testing.T) {
	for _, name := range fullFixtures {
		t.Run(name, func(t *testing.T) {
			m, r := loadReference(t, name)
			want := r.t["next_token_logprobs"]
			lp, ent, err := m.LogProbs(r.ids, r.mask)
			if err != nil {
				t.Fatal(err)
			}
			logits, err := m.Logits(r.ids, r.mask)
			if err != nil {
				t.Fatal(err)
			}
			T := len(r.ids[0])
			maxDiff, maxEnt := 0.0, 0.0
			for b := range r.ids {
				for p := 0; p < T-1; p++ {
					if r.mask[b][p] == 0 {
						if lp[b][p] != 0 || ent[b][p] != 0 {
							t.Errorf("[%d][%d] is padding but logp=%g entropy=%g, want 0", b, p, lp[b][p], ent[b][p])
						}
						continue
					}
					maxDiff = math.Max(maxDiff, math.Abs(float64(lp[b][p]-want.F32[b*(T-1)+p])))
					maxEnt = math.Max(maxEnt, math.Abs(float64(ent[b][p])-directEntropy(logits[b][p])))
				}
			}
			t.Logf("max |logp diff| = %.3g, max |entropy - direct| = %.3g", maxDiff, maxEnt)
			if maxDiff > 1e-4 || maxEnt > 1e-4 {
				t.Errorf("logp diff %.3g or entropy diff %.3g > 1e-4", maxDiff, maxEnt)
			}
		})
	}
}

// directEntropy computes -Σ p log p of softmax(logits) in float64.
func directEntropy(logits []float32) float64 {
	mx := math.Inf(-1)
	for _, x := range logits {
		mx = math.Max(mx, float64(x))
	}
	z := 0.0
	for _, x := range logits {
		z += math.Exp(float64(x) - mx)
	}
	h := 0.0
	for _, x := range logits {
		p := math.Exp(float64(x)-mx) / z
		if p > 0 {
			h -= p * math.Log(p)
		}
	}
	return h
}

// TestGradientParity proves the training path: mean next-token cross-entropy of row 0, expressed
// as the surrogate with coefLogp = -1/(T-1), must give transformers' loss and gradients.
func TestGradientParity(t *testing.T) {
	for _, name := range fullFixtures {
		t.Run(name, func(t *testing.T) {
			m, r := loadReference(t, name)
			wantLoss := r.t["loss"]
			tr, err := NewTrainer(m, OptimConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
			if err != nil {
				t.Fatal(err)
			}
			T := len(r.ids[0])
			coef := make([]float32, T-1)
			for i := range coef {
				coef[i] = -1 / float32(T-1)
			}
			ids, mask := r.ids[:1], [][]int32{ones(T)}
			lp, _, err := tr.Accumulate(ids, mask, [][]float32{coef}, nil)
			if err != nil {
				t.Fatal(err)
			}
			loss := 0.0
			for _, v := range lp[0] {
				loss -= float64(v) / float64(T-1)
			}
			if rel := math.Abs(loss-float64(wantLoss.F32[0])) / math.Abs(float64(wantLoss.F32[0])); rel > 1e-4 {
				t.Errorf("loss %.7g, transformers %.7g (rel %.3g)", loss, wantLoss.F32[0], rel)
			}
			for key, want := range r.t {
				if len(key) < 5 || key[:5] != "grad." {
					continue
				}
				got, err := tr.gradients(key[5:])
				if err != nil {
					t.Fatal(err)
				}
				rel := relErr(got, want.F32)
				t.Logf("%s: relative error %.3g", key, rel)
				if rel > 1e-4 {
					t.Errorf("%s: relative error %.3g > 1e-4", key, rel)
				}
			}
		})
	}
}

func ones(n int) []int32 {
	o := make([]int32, n)
	for i := range o {
		o[i] = 1
	}
	return o
}

// relErr is ‖got−want‖₂ / ‖want‖₂.
func relErr(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(num / den)
}
