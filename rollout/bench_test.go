package rollout

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkChoose measures the host-side cost of one token for one row with a Qwen-sized
// vocabulary (151,936): everything Sample does per row and step besides calling the decoder.
func BenchmarkChoose(b *testing.B) {
	const V = 151936
	rng := rand.New(rand.NewPCG(1, 1))
	z := make([]float32, V)
	for i := range z {
		z[i] = float32(2.5 * rng.NormFloat64())
	}
	for i := range 20 { // a few dominant tokens, as in a trained LM
		z[rng.IntN(V)] = float32(12 + i%5)
	}
	configs := []struct {
		name string
		cfg  Config
	}{
		{"greedy", Config{Temperature: 0, MaxNewTokens: 1}},
		{"plain", Config{Temperature: 1, MaxNewTokens: 1}},
		{"T0.7", Config{Temperature: 0.7, MaxNewTokens: 1}},
		{"topk50", Config{Temperature: 1, TopK: 50, MaxNewTokens: 1}},
		{"topp0.95", Config{Temperature: 1, TopP: 0.95, MaxNewTokens: 1}},
		{"minp0.05", Config{Temperature: 1, MinP: 0.05, MaxNewTokens: 1}},
		{"T0.6+topk20+topp0.95", Config{Temperature: 0.6, TopK: 20, TopP: 0.95, MaxNewTokens: 1}},
	}
	for _, c := range configs {
		b.Run(c.name, func(b *testing.B) {
			sp := newSampler(c.cfg, rand.New(rand.NewPCG(2, 2)))
			b.SetBytes(4 * V)
			for b.Loop() {
				if _, err := sp.choose(z); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
