package model

import (
	"math"
	"testing"
)

func argmax(xs []float32) int32 {
	best := 0
	for i, x := range xs {
		if x > xs[best] {
			best = i
		}
	}
	return int32(best)
}

// TestGreedyParity decodes the fixture's greedy prompt with the KV-cache decoder and with repeated
// full forward passes; both must reproduce transformers' generate() token for token.
func TestGreedyParity(t *testing.T) {
	for _, name := range fullFixtures {
		t.Run(name, func(t *testing.T) {
			m, r := loadReference(t, name)
			prompt := r.t["greedy_prompt"].I32
			want := r.t["greedy_output"].I32
			newTokens := len(want) - len(prompt)

			dec, err := m.NewDecoder(1, len(want))
			if err != nil {
				t.Fatal(err)
			}
			logits, err := dec.Prefill([][]int32{prompt})
			if err != nil {
				t.Fatal(err)
			}
			cached := append([]int32(nil), prompt...)
			for i := 0; i < newTokens; i++ {
				tok := argmax(logits[0])
				cached = append(cached, tok)
				if i+1 < newTokens {
					if logits, err = dec.Step([]int32{tok}); err != nil {
						t.Fatal(err)
					}
				}
			}

			full := append([]int32(nil), prompt...)
			for i := 0; i < newTokens; i++ {
				lg, err := m.Logits([][]int32{full}, [][]int32{ones(len(full))})
				if err != nil {
					t.Fatal(err)
				}
				full = append(full, argmax(lg[0][len(full)-1]))
			}
			for i := range want {
				if cached[i] != want[i] || full[i] != want[i] {
					t.Fatalf("greedy tokens differ at %d:\n kv-cache %v\n forward  %v\n transformers %v", i, cached, full, want)
				}
			}
		})
	}
}

// TestDecoderRaggedBatch decodes prompts of different lengths together (plus an unused row) and
// checks every step's logits against a full forward pass over each row alone.
func TestDecoderRaggedBatch(t *testing.T) {
	m, err := Load(fixtureDir("qwen3"))
	if err != nil {
		t.Fatal(err)
	}
	prompts := [][]int32{{5, 17, 33}, {100, 7, 250, 31, 9, 12, 64, 3, 19, 20, 21, 22, 23, 24, 25, 26, 27}, {42}}
	dec, err := m.NewDecoder(4, 24)
	if err != nil {
		t.Fatal(err)
	}
	seqs := make([][]int32, len(prompts))
	for i, p := range prompts {
		seqs[i] = append([]int32(nil), p...)
	}
	logits, err := dec.Prefill(prompts)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for step := 0; step < 6; step++ {
		next := make([]int32, len(seqs))
		for i, s := range seqs {
			ref, err := m.Logits([][]int32{s}, [][]int32{ones(len(s))})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range ref[0][len(s)-1] {
				worst = math.Max(worst, math.Abs(float64(v-logits[i][k])))
			}
			next[i] = int32((step*37 + i*11 + 5) % m.Config().VocabSize) // arbitrary, not greedy
			seqs[i] = append(seqs[i], next[i])
		}
		if logits, err = dec.Step(next); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("max |decoder - forward| logit diff over 6 steps = %.3g", worst)
	if worst > 1e-4 {
		t.Errorf("decoder logits differ from forward by %.3g > 1e-4", worst)
	}
}
