package rollout

import (
	"math/rand/v2"
	"testing"

	"github.com/polo-rl/polo/internal/avxstate"
)

// TestHostLoopsClearAVXUpperState checks that the sampler's loops over the vocabulary start by
// clearing the AVX upper state, so that their legacy SSE code runs at full speed on Intel Xeons
// even after a preemption left the state dirty (see package avxstate). Each function is entered
// with the state dirty and must leave it clean; a preemption during the call can dirty it again, so
// one clean exit out of a few tries passes.
func TestHostLoopsClearAVXUpperState(t *testing.T) {
	if _, known := avxstate.Dirty(); !known {
		t.Skip("the CPU cannot report XINUSE (no XGETBV with ECX=1)")
	}
	avxstate.MakeDirty()
	if dirty, _ := avxstate.Dirty(); !dirty {
		t.Skip("avxstate.MakeDirty cannot dirty the upper state on this CPU (no AVX)")
	}
	avxstate.Clear()
	if dirty, _ := avxstate.Dirty(); dirty {
		t.Skip("avxstate.Clear is a no-op in this build (it needs GOEXPERIMENT=simd on amd64)")
	}

	rng := rand.New(rand.NewPCG(1, 2))
	z := make([]float32, 1000)
	for j := range z {
		z[j] = float32(2 * rng.NormFloat64())
	}
	p := make([]float64, len(z))
	for j := range p {
		p[j] = 1 / float64(len(p))
	}
	cases := []struct {
		name string
		run  func() error
	}{
		{"choose/greedy", func() error {
			_, err := newSampler(Config{MaxNewTokens: 1}, nil).choose(z)
			return err
		}},
		{"choose/T0.7+topp0.9", func() error {
			_, err := newSampler(Config{Temperature: 0.7, TopP: 0.9, MaxNewTokens: 1}, rng).choose(z)
			return err
		}},
		{"TopLogProbs", func() error { TopLogProbs(nil, z, 5); return nil }},
		{"TopPNucleus", func() error { _, err := TopPNucleus(z, 0.9, nil); return err }},
		{"SpecVerify", func() error {
			SpecVerify([]int32{0}, [][]float64{p}, [][]float64{p, p}, rng)
			return nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for range 5 {
				avxstate.MakeDirty()
				err := c.run()
				dirty, _ := avxstate.Dirty()
				if err != nil {
					t.Fatal(err)
				}
				if !dirty {
					return
				}
			}
			t.Fatal("the AVX upper state is still dirty after the call; the loop does not start with avxstate.Clear")
		})
	}
}
