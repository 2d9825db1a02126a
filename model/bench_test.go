package model

import (
	"math/rand/v2"
	"testing"
)

// The reference workload of the engine notes: B=16, T=128, 4 layers, d=256, 4 heads, MLP 1024
// (SwiGLU here), vocab 256. Run with:
//
//	GOEXPERIMENT=simd go test ./model/ -run '^$' -bench . -benchtime 5x
func benchModel(b *testing.B) *Model {
	cfg, err := Preset("bench", 256)
	if err != nil {
		b.Fatal(err)
	}
	m, err := New(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func benchBatch(bsz, T, vocab int) (ids, mask [][]int32, coef [][]float32) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < bsz; i++ {
		row, c := make([]int32, T), make([]float32, T-1)
		for j := range row {
			row[j] = int32(rng.IntN(vocab))
		}
		for j := range c {
			c[j] = -1 / float32(bsz*(T-1))
		}
		ids, mask, coef = append(ids, row), append(mask, ones(T)), append(coef, c)
	}
	return
}

// BenchmarkTrainStep: forward + backward + AdamW on 16×128 tokens.
func BenchmarkTrainStep(b *testing.B) {
	m := benchModel(b)
	tr, _ := NewTrainer(m, OptimConfig{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, ClipNorm: 1})
	ids, mask, coef := benchBatch(16, 128, 256)
	step := func() {
		if _, _, err := tr.Accumulate(ids, mask, coef, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := tr.Step(1e-4); err != nil {
			b.Fatal(err)
		}
	}
	step() // compile
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.ReportMetric(float64(16*128*b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkForward: LogProbs on 16×128 tokens.
func BenchmarkForward(b *testing.B) {
	m := benchModel(b)
	ids, mask, _ := benchBatch(16, 128, 256)
	if _, _, err := m.LogProbs(ids, mask); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := m.LogProbs(ids, mask); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeStep: one KV-cache decode step for batch 16 with a 128-slot cache.
func BenchmarkDecodeStep(b *testing.B) {
	m := benchModel(b)
	dec, err := m.NewDecoder(16, 112) // capacity 128
	if err != nil {
		b.Fatal(err)
	}
	if dec.Capacity() != 128 {
		b.Fatalf("capacity %d, want 128", dec.Capacity())
	}
	prompts, _, _ := benchBatch(16, 16, 256)
	tokens := make([]int32, 16)
	reset := func() {
		if _, err := dec.Prefill(prompts); err != nil {
			b.Fatal(err)
		}
	}
	reset()
	if _, err := dec.Step(tokens); err != nil { // compile
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if dec.slot >= dec.capacity {
			b.StopTimer()
			reset()
			b.StartTimer()
		}
		if _, err := dec.Step(tokens); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(16*b.N)/b.Elapsed().Seconds(), "tokens/s")
}
