// Package fmath holds float64 math that must not call package math's assembly.
//
// On Intel Xeons, in binaries built with GOEXPERIMENT=simd, math.Exp measured 860 ns per call
// instead of 7 ns: its amd64 assembly mixes VEX-encoded FMA with legacy SSE instructions and pays
// AVX/SSE transition penalties (GODEBUG=cpu.fma=off, which selects its SSE-only path, restores the
// speed). The sampler calls exp once per vocabulary entry per token, so polo's hot loops use Exp
// here: plain Go, which the compiler turns into SSE2 code only.
package fmath

import "math"

const (
	ln2Hi    = 6.93147180369123816490e-01 // high bits of ln 2; k·ln2Hi is exact for |k| < 2¹⁰
	ln2Lo    = 1.90821492927058770002e-10 // ln 2 − ln2Hi
	invLn2   = 1.44269504088896338700e+00
	overflow = 7.09782712893383973096e+02  // ln(MaxFloat64)
	under    = -7.45133219101941108420e+02 // below this, e^x rounds to 0
	// Remez coefficients of R(r²) ≈ r·(e^r+1)/(e^r−1) on |r| ≤ ln2/2 (the classic fdlibm
	// approximation, error < 2⁻⁵⁹).
	p1 = 1.66666666666666019037e-01
	p2 = -2.77777777770155933842e-03
	p3 = 6.61375632143793436117e-05
	p4 = -1.65339022054652515390e-06
	p5 = 4.13813679705723846039e-08
)

// Exp returns e^x with an error below 1 ulp, like math.Exp (NaN → NaN, +Inf → +Inf, −Inf → 0,
// overflow → +Inf, underflow → 0 or a subnormal).
func Exp(x float64) float64 {
	switch {
	case x != x || x > overflow:
		return x + math.Inf(1) // NaN stays NaN
	case x < under:
		return 0
	case x > -3.7252902984e-09 && x < 3.7252902984e-09: // |x| < 2⁻²⁸: e^x = 1 + x to within an ulp
		return 1 + x
	}
	// x = k·ln2 + r, |r| ≤ ln2/2, with r kept as hi − lo for accuracy.
	var k int
	if x < 0 {
		k = int(invLn2*x - 0.5)
	} else {
		k = int(invLn2*x + 0.5)
	}
	hi := x - float64(k)*ln2Hi
	lo := float64(k) * ln2Lo
	r := hi - lo
	t := r * r
	c := r - t*(p1+t*(p2+t*(p3+t*(p4+t*p5))))
	y := 1 - ((lo - (r*c)/(2-c)) - hi)
	return scale(y, k)
}

// scale returns y·2ᵏ for y in [0.5, 2).
func scale(y float64, k int) float64 {
	if k > -1021 && k < 1024 {
		return y * math.Float64frombits(uint64(k+1023)<<52)
	}
	return math.Ldexp(y, k) // subnormal results and the top of the range
}
