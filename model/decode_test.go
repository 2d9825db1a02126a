package model

import (
	"math"
	"strings"
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

// TestDecoderReuseAndLimits: a second Prefill on the same decoder starts clean (the cache slots
// written by earlier steps must not leak into the new batch), and misuse gives clear errors.
func TestDecoderReuseAndLimits(t *testing.T) {
	m, err := Load(fixtureDir("llama"))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := m.NewDecoder(2, 16) // capacity 16
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Step([]int32{1, 2}); err == nil || !strings.Contains(err.Error(), "call Prefill first") {
		t.Errorf("step before prefill: %v", err)
	}
	if _, err := dec.Prefill([][]int32{{3, 4, 5}, {6}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ { // fill slots 3..12 with tokens of the first batch
		if _, err := dec.Step([]int32{int32(10 + i), int32(20 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	seq := []int32{7, 8, 9, 10}
	got, err := dec.Prefill([][]int32{seq})
	if err != nil {
		t.Fatal(err)
	}
	got2, err := dec.Step([]int32{11})
	if err != nil {
		t.Fatal(err)
	}
	full, _ := m.Logits([][]int32{append(seq, 11)}, [][]int32{ones(5)})
	worst := 0.0
	for k := range got[0] {
		worst = math.Max(worst, math.Abs(float64(got[0][k]-full[0][3][k])))
		worst = math.Max(worst, math.Abs(float64(got2[0][k]-full[0][4][k])))
	}
	if worst > 1e-4 {
		t.Errorf("reused decoder differs from forward by %.3g", worst)
	}
	for _, c := range []struct {
		run  func() error
		want string
	}{
		{func() error { _, err := dec.Step([]int32{1, 2}); return err }, "2 tokens for 1 rows"},
		{func() error { _, err := dec.Step([]int32{999}); return err }, "outside the vocabulary"},
		{func() error { _, err := dec.Prefill([][]int32{{1}, {2}, {3}}); return err }, "3 prompts for a decoder of batch 2"},
		{func() error { _, err := dec.Prefill([][]int32{make([]int32, 40)}); return err }, "does not fit"},
		{func() error { _, err := dec.Prefill([][]int32{{}}); return err }, "prompt 0 is empty"},
	} {
		if err := c.run(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error containing %q", err, c.want)
		}
	}
	// Fill the cache to capacity: 2 prompt slots + the rest in steps, then a clear error.
	if _, err := dec.Prefill([][]int32{{1, 2}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < dec.Capacity()-2; i++ {
		if _, err := dec.Step([]int32{3}); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if _, err := dec.Step([]int32{3}); err == nil || !strings.Contains(err.Error(), "cache full") {
		t.Errorf("overfull cache: %v", err)
	}
}
