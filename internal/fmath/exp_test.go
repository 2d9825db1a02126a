package fmath

import (
	"math"
	"testing"
	"time"
)

// TestExpMatchesMath compares Exp with math.Exp over the whole float64 range that matters,
// including the special values: within 2 ulp of it (each is within 1 ulp of e^x).
func TestExpMatchesMath(t *testing.T) {
	check := func(x float64) {
		got, want := Exp(x), math.Exp(x)
		switch {
		case math.IsNaN(want):
			if !math.IsNaN(got) {
				t.Fatalf("Exp(%g) = %g, want NaN", x, got)
			}
		case want == 0 || math.IsInf(want, 0):
			if got != want {
				t.Fatalf("Exp(%g) = %g, want %g", x, got, want)
			}
		default:
			if ulps := math.Abs(got-want) / (math.Nextafter(want, math.Inf(1)) - want); ulps > 2 { // both are within 1 ulp of e^x
				t.Fatalf("Exp(%g) = %.17g, want %.17g (%.1f ulp)", x, got, want, ulps)
			}
		}
	}
	for x := -746.0; x <= 709.4; x += 0.0137 { // math.Exp's assembly overflows early, above 709.44
		check(x)
	}
	// Near the top of the range math.Exp returns +Inf too early; e^709.78 = e·e^708.78 is finite.
	if got, want := Exp(709.78), math.E*math.Exp(708.78); math.Abs(got-want) > 4e-16*want {
		t.Fatalf("Exp(709.78) = %g, want %g", got, want)
	}
	for x := -1e-6; x <= 1e-6; x += 3.1e-9 {
		check(x)
	}
	for _, x := range []float64{0, math.Copysign(0, -1), 1, -1, 709.79, -708.4, -740, -745.2, 1e-300,
		math.Inf(1), math.Inf(-1), math.NaN(), math.MaxFloat64, -math.MaxFloat64} {
		check(x)
	}
}

// TestExpCostsLikeALog is the host-side twin of the engine's guard: Exp over a slice must cost
// within 4× math.Log over the same slice, in one process. math.Log's assembly is plain SSE and was
// unaffected by the Intel penalty that made math.Exp ~100× slower; Exp measures ~1–1.5× a Log.
func TestExpCostsLikeALog(t *testing.T) {
	if testing.Short() {
		t.Skip("cost ratio: skipped with -short")
	}
	x := make([]float64, 1<<16)
	for i := range x {
		x[i] = float64(i%2000)/100 + 0.5
	}
	out := make([]float64, len(x))
	best := func(f func()) time.Duration {
		var b time.Duration
		for r := 0; r < 15; r++ {
			s := time.Now()
			f()
			if d := time.Since(s); r == 0 || d < b {
				b = d
			}
		}
		return b
	}
	logT := best(func() {
		for i, v := range x {
			out[i] = math.Log(v)
		}
	})
	expT := best(func() {
		for i, v := range x {
			out[i] = Exp(v - 10)
		}
	})
	ratio := float64(expT) / float64(logT)
	t.Logf("exp/log = %.2f×", ratio)
	if ratio > 4 {
		t.Errorf("Exp costs %.1f× math.Log (limit 4×): a slow exp is back", ratio)
	}
}

func BenchmarkExp(b *testing.B) {
	s := 0.0
	for i := 0; b.Loop(); i++ {
		s += Exp(float64(i%1000)/50 - 10)
	}
	_ = s
}

func BenchmarkMathExp(b *testing.B) {
	s := 0.0
	for i := 0; b.Loop(); i++ {
		s += math.Exp(float64(i%1000)/50 - 10)
	}
	_ = s
}
