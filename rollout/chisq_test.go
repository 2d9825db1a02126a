package rollout

import (
	"math"
	"testing"
)

// chiSquarePValue is P(X >= x) for X ~ χ²(df): the regularised upper incomplete gamma
// Q(df/2, x/2), by its power series below a+1 and its continued fraction above.
func chiSquarePValue(x float64, df int) float64 {
	if math.IsInf(x, 1) {
		return 0
	}
	a, y := float64(df)/2, x/2
	if y <= 0 {
		return 1
	}
	lg, _ := math.Lgamma(a)
	front := math.Exp(a*math.Log(y) - y - lg)
	if y < a+1 {
		sum, term := 1/a, 1/a
		for n := 1; n < 1000; n++ {
			term *= y / (a + float64(n))
			sum += term
			if term < sum*1e-15 {
				break
			}
		}
		return 1 - front*sum
	}
	// Modified Lentz evaluation of the continued fraction for Γ(a, y).
	const tiny = 1e-300
	b := y + 1 - a
	c, d := 1/tiny, 1/b
	h := d
	for n := 1; n < 1000; n++ {
		an := -float64(n) * (float64(n) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		delta := d * c
		h *= delta
		if math.Abs(delta-1) < 1e-15 {
			break
		}
	}
	return front * h
}

// TestChiSquarePValue checks the helper against tabulated critical values.
func TestChiSquarePValue(t *testing.T) {
	tests := []struct {
		x    float64
		df   int
		want float64
	}{
		{3.841458820694124, 1, 0.05},
		{9.487729036781154, 4, 0.05},
		{23.209251158954356, 10, 0.01},
		{0.4549364231195724, 1, 0.5},
		{2, 2, math.Exp(-1)}, // χ²(2) is exponential with mean 2
	}
	for _, tc := range tests {
		if got := chiSquarePValue(tc.x, tc.df); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("p(χ²=%v, df=%d) = %v, want %v", tc.x, tc.df, got, tc.want)
		}
	}
}
