package model

import (
	"math"
	"testing"
)

// TestHFPresets: the embedded configs have the published shapes, and their parameter counts are the
// published ones (Qwen2.5-0.5B: 494,032,768; Qwen2.5-1.5B: 1,543,714,304, tied embeddings).
func TestHFPresets(t *testing.T) {
	for _, c := range []struct {
		name                              string
		d, layers, heads, kv, inter, want int
	}{
		{"qwen2.5-0.5b", 896, 24, 14, 2, 4864, 494032768},
		{"qwen2.5-1.5b", 1536, 28, 12, 2, 8960, 1543714304},
	} {
		cfg, err := HFPreset(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.HiddenSize != c.d || cfg.NumLayers != c.layers || cfg.NumHeads != c.heads || cfg.NumKVHeads != c.kv ||
			cfg.IntermediateSize != c.inter || cfg.VocabSize != 151936 || !cfg.TieWordEmbeddings || !cfg.AttentionBias || cfg.ModelType != "qwen2" {
			t.Fatalf("%s: %+v", c.name, cfg)
		}
		n := 0
		for _, s := range newLayout(cfg).shapes {
			n += prod(s)
		}
		if n != c.want {
			t.Fatalf("%s: %d parameters, want %d", c.name, n, c.want)
		}
	}
	if _, err := HFPreset("gpt2"); err == nil {
		t.Fatal("unknown preset accepted")
	}
}

// TestBenchTiny: the benchmark trains (first-step loss ≈ ln V for near-uniform random weights),
// counts trainable parameters and reports a peak at least the resident size after init.
func TestBenchTiny(t *testing.T) {
	cfg, _ := Preset("tiny", 40)
	c := LoRAConfig{Rank: 2, Alpha: 4, Targets: []string{"q_proj"}, Seed: 1}
	res, err := Bench(cfg, BenchOptions{LoRA: &c, Remat: true, Batch: 2, Seq: 16, Steps: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res.Loss-math.Log(40)) > 0.1 {
		t.Fatalf("first-step loss %g, want ≈ ln 40 = %g", res.Loss, math.Log(40))
	}
	if res.Trainable != 2*2*(2*64) || len(res.StepSeconds) != 1 {
		t.Fatalf("trainable %d, steps %d", res.Trainable, len(res.StepSeconds))
	}
	if res.PeakRSS < res.RSSAfterInit || res.PeakRSS == 0 {
		t.Fatalf("peak %d < after init %d", res.PeakRSS, res.RSSAfterInit)
	}
}
