// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

import (
	"math"

	"github.com/gomlx/compute/internal/gobackend"
)

// Float32 Exp, Logistic and Tanh without math.Exp (polo patch 0002).
//
// math.Exp is a float64 assembly routine: computing a float32 op through it is several times
// slower than a float32 polynomial, and on Intel Xeons with GOEXPERIMENT=simd it measured
// ~120× slower still (860 ns per call: its VEX-encoded FMA mixed with legacy SSE instructions
// pays AVX/SSE transition penalties), which made SiLU 75% of a transformer forward. Here exp is
// the Cephes expf polynomial (relative error ≲ 2 ulp), on 8 lanes at a time where the CPU has
// AVX2+FMA and in plain Go otherwise; neither path calls math.Exp.
//
// Special values follow math.Exp: NaN → NaN, large x → +Inf, x → −∞ gives 0. Results below the
// smallest normal float32 (x < −87.34) are flushed to 0.

const (
	exp32MaxArg = 88.72283   // exp(x) overflows float32 above this
	exp32MinArg = -87.33654  // exp(x) is below the smallest normal float32 under this
	exp32Log2E  = 1.44269504 // log₂(e)
	exp32Ln2Hi  = 0.693359375
	exp32Ln2Lo  = -2.12194440e-4
	exp32P0     = 1.9875691500e-4
	exp32P1     = 1.3981999507e-3
	exp32P2     = 8.3334519073e-3
	exp32P3     = 4.1665795894e-2
	exp32P4     = 1.6666665459e-1
	exp32P5     = 5.0000001201e-1
)

// exp32 is the scalar exp used for tails and on CPUs without the vector kernel.
func exp32(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > exp32MaxArg:
		return float32(math.Inf(1))
	case x < exp32MinArg:
		return 0
	}
	n := float32(math.Floor(float64(x*exp32Log2E + 0.5)))
	g := x - n*exp32Ln2Hi - n*exp32Ln2Lo
	p := ((((exp32P0*g+exp32P1)*g+exp32P2)*g+exp32P3)*g+exp32P4)*g + exp32P5
	e := p*g*g + g + 1
	// n ∈ [−126, 128]: scale by 2ⁿ in two halves so 2¹²⁸ never has to be a float32.
	h := int32(n) / 2
	return e * math.Float32frombits(uint32(h+127)<<23) * math.Float32frombits(uint32(int32(n)-h+127)<<23)
}

// Vector kernels: set by the amd64 SIMD file when the CPU supports them. Each processes a prefix
// of its input whose length is a multiple of its width and returns that length.
var (
	exp32Vector      func(in, out []float32) int
	logistic32Vector func(in, out []float32) int
)

// elementwiseMinChunk is the smallest slice worth handing to another worker.
const elementwiseMinChunk = 16384

func execExpFloat32(backend *gobackend.Backend, in, out []float32) {
	parallelFor(backend, len(in), elementwiseMinChunk, func(lo, hi int) {
		in, out := in[lo:hi], out[lo:hi]
		i := 0
		if exp32Vector != nil {
			i = exp32Vector(in, out)
		}
		for ; i < len(in); i++ {
			out[i] = exp32(in[i])
		}
	})
}

func execLogisticFloat32(backend *gobackend.Backend, in, out []float32) {
	parallelFor(backend, len(in), elementwiseMinChunk, func(lo, hi int) {
		in, out := in[lo:hi], out[lo:hi]
		i := 0
		if logistic32Vector != nil {
			i = logistic32Vector(in, out)
		}
		for ; i < len(in); i++ {
			out[i] = 1 / (1 + exp32(-in[i]))
		}
	})
}

// tanh32 is Cephes' tanh (as in math.Tanh): a rational approximation for |x| < 0.625, and
// 1 − 2/(e^{2|x|}+1) elsewhere, with exp32.
func tanh32(x float32) float32 {
	a := x
	if a < 0 {
		a = -a
	}
	if a < 0.625 {
		z := x * x
		return x + x*z*((tanhP0*z+tanhP1)*z+tanhP2)/(((z+tanhQ0)*z+tanhQ1)*z+tanhQ2)
	}
	t := 1 - 2/(exp32(2*a)+1)
	if x < 0 {
		return -t
	}
	return t
}

// Cephes tanh rational approximation on |x| < 0.625.
const (
	tanhP0 = -9.64399179425052238628e-1
	tanhP1 = -9.92877231001918586564e1
	tanhP2 = -1.61468768441708447952e3
	tanhQ0 = 1.12811678491632931402e2
	tanhQ1 = 2.23548839060100448583e3
	tanhQ2 = 4.84406305325125486048e3
)

var tanh32Vector func(in, out []float32) int

func execTanhFloat32(backend *gobackend.Backend, in, out []float32) {
	parallelFor(backend, len(in), elementwiseMinChunk, func(lo, hi int) {
		in, out := in[lo:hi], out[lo:hi]
		i := 0
		if tanh32Vector != nil {
			i = tanh32Vector(in, out)
		}
		for ; i < len(in); i++ {
			out[i] = tanh32(in[i])
		}
	})
}
