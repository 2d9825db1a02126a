package engine

import (
	"math"
	"testing"
	"time"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/polo-rl/polo/internal/avxstate"
)

// TestExpFamilyCostsLikeAnAdd guards against the regression that made SiLU 75% of a transformer
// forward on Intel Xeons (math.Exp at 860 ns per call with GOEXPERIMENT=simd): in one process,
// on the configured backend, Exp, Logistic and Tanh over a 1M-element tensor must cost within 20×
// an Add of the same tensor (they measured 1.5–3× after the fix, ~300× before it on Intel). A
// ratio of two ops in one process, not a time limit, so machine speed and load cancel out. It also
// checks the values against package math.
func TestExpFamilyCostsLikeAnAdd(t *testing.T) {
	if testing.Short() {
		t.Skip("op cost ratios: skipped with -short")
	}
	backend := MustBackend()
	const n = 1 << 20
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i%4001)/200 - 10 // [-10, 10]
	}
	input := tensors.FromFlatDataAndDimensions(x, 1024, 1024)

	run := func(name string, f func(*graph.Node) *graph.Node) (time.Duration, []float32) {
		exec, err := graph.NewExec(backend, f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer exec.Finalize()
		var best time.Duration
		var out []float32
		for r := 0; r < 9; r++ {
			start := time.Now()
			res, err := exec.Exec(input)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if d := time.Since(start); r == 0 || d < best {
				best = d
			}
			out = tensors.MustCopyFlatData[float32](res[0])
		}
		return best, out
	}

	add, _ := run("add", func(x *graph.Node) *graph.Node { return graph.Add(x, x) })
	for _, c := range []struct {
		name string
		f    func(*graph.Node) *graph.Node
		ref  func(float64) float64
	}{
		{"exp", graph.Exp, math.Exp},
		{"logistic", graph.Sigmoid, func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }},
		{"tanh", graph.Tanh, math.Tanh},
	} {
		d, out := run(c.name, c.f)
		for i := 0; i < n; i += 997 {
			want := c.ref(float64(x[i]))
			if math.Abs(float64(out[i])-want) > 3e-7*math.Max(math.Abs(want), 1e-3) {
				t.Fatalf("%s(%g) = %g, want %g", c.name, x[i], out[i], want)
			}
		}
		ratio := float64(d) / float64(add)
		t.Logf("%s: %v, add: %v, ratio %.1f×", c.name, d, add, ratio)
		if ratio > 20 {
			t.Errorf("%s costs %.0f× an add of the same tensor (limit 20×): a slow exp is back", c.name, ratio)
		}
	}
}

// TestLegacySSEAfterDirtyUpper names, on the machine it runs on, the cost of running Go's scalar
// float64 code (legacy SSE) with the AVX upper state dirty, as every asynchronous preemption leaves
// it in GOEXPERIMENT=simd builds on AVX-512 machines (see package avxstate): fmath.Exp and math.Exp
// over 2¹⁸ values, entered dirty versus entered clean (median of 7 runs each). Intel Xeons pay
// AVX/SSE transition penalties (math.Exp measured 120× slower); an AMD EPYC (Zen 4) measured about
// 2× for both. The ratios depend on the hardware, not on polo's code, so the test only logs them.
func TestLegacySSEAfterDirtyUpper(t *testing.T) {
	if testing.Short() {
		t.Skip("timings: skipped with -short")
	}
	f, m, ok := avxstate.ExpPenalties()
	if !ok {
		t.Skip("the AVX upper state cannot be both dirtied and cleared here (it needs GOEXPERIMENT=simd on amd64 with AVX and XINUSE)")
	}
	t.Logf("over 2¹⁸ values entered with the AVX upper state dirty, on %s: fmath.Exp %.2f×, math.Exp %.2f× its time entered clean", avxstate.CPUName(), f, m)
}
