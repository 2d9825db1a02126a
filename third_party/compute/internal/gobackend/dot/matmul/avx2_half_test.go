// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package matmul

import (
	"fmt"
	"math"
	"math/rand/v2"
	"simd/archsimd"
	"testing"

	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/internal/gobackend/dot"
)

// TestAVX2HalfMatchesReference checks the AVX2 BFloat16 and Float16 kernels (float32 accumulation
// and output) against a float64 triple loop over the exact half-precision inputs: both layouts,
// the small and the large variants, batches, odd sizes and contracting sizes from 1 to 300.
func TestAVX2HalfMatchesReference(t *testing.T) {
	if !archsimd.X86.AVX2() {
		t.Skip("no AVX2 on this CPU")
	}
	b, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	backend := b.(*gobackend.Backend)
	defer func() { ForceSmallVariant, ForceLargeVariant = false, false }()

	type shape struct{ batch, m, n, k int }
	shapes := []shape{{1, 1, 8, 16}, {1, 4, 3, 64}, {1, 1, 1, 1}, {1, 1, 16, 15}, {1, 5, 17, 33}, {2, 7, 9, 300}}
	for _, k := range []int{1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200, 255, 256, 257, 300} {
		shapes = append(shapes, shape{1, 4, 16, k}, shape{3, 5, 19, k})
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for range 40 {
		shapes = append(shapes, shape{1 + rng.IntN(4), 1 + rng.IntN(40), 1 + rng.IntN(70), 1 + rng.IntN(300)})
	}

	for _, dtype := range []string{"bf16", "f16"} {
		for _, variant := range []string{"small", "large"} {
			for _, layout := range []dot.Layout{dot.LayoutNonTransposed, dot.LayoutTransposed} {
				ForceSmallVariant, ForceLargeVariant = variant == "small", variant == "large"
				for _, s := range shapes {
					lhs64, rhs64 := make([]float64, s.batch*s.m*s.k), make([]float64, s.batch*s.n*s.k)
					var lhsB, rhsB []bfloat16.BFloat16
					var lhsH, rhsH []float16.Float16
					if dtype == "bf16" {
						lhsB, rhsB = make([]bfloat16.BFloat16, len(lhs64)), make([]bfloat16.BFloat16, len(rhs64))
					} else {
						lhsH, rhsH = make([]float16.Float16, len(lhs64)), make([]float16.Float16, len(rhs64))
					}
					fill := func(x64 []float64, xb []bfloat16.BFloat16, xh []float16.Float16) {
						for i := range x64 {
							v := float32(rng.NormFloat64())
							if xb != nil {
								xb[i] = bfloat16.FromFloat32(v)
								x64[i] = float64(xb[i].Float32())
							} else {
								xh[i] = float16.FromFloat32(v)
								x64[i] = float64(xh[i].Float32())
							}
						}
					}
					fill(lhs64, lhsB, lhsH)
					fill(rhs64, rhsB, rhsH)
					out := make([]float32, s.batch*s.m*s.n)
					for i := range out {
						out[i] = float32(math.NaN()) // the kernels must overwrite, not accumulate.
					}
					if dtype == "bf16" {
						avx2RouterBFloat16(backend, layout, lhsB, rhsB, s.batch, s.m, s.n, s.k, out)
					} else {
						avx2RouterFloat16(backend, layout, lhsH, rhsH, s.batch, s.m, s.n, s.k, out)
					}
					name := fmt.Sprintf("%s/%s/%s b=%d m=%d n=%d k=%d", dtype, variant, layout, s.batch, s.m, s.n, s.k)
					if err := checkAgainstFloat64(layout, lhs64, rhs64, s.batch, s.m, s.n, s.k, out); err != nil {
						t.Errorf("%s: %v", name, err)
					}
				}
			}
		}
	}
}

// checkAgainstFloat64 compares out ([batch, m, n]) with the float64 product of lhs ([batch, m, k])
// and rhs ([batch, k, n], or [batch, n, k] for dot.LayoutTransposed).
func checkAgainstFloat64(layout dot.Layout, lhs, rhs []float64, batch, m, n, k int, out []float32) error {
	for b := range batch {
		for i := range m {
			for j := range n {
				var want, scale float64
				for kk := range k {
					r := rhs[b*k*n+kk*n+j]
					if layout == dot.LayoutTransposed {
						r = rhs[b*n*k+j*k+kk]
					}
					p := lhs[b*m*k+i*k+kk] * r
					want += p
					scale += math.Abs(p)
				}
				got := float64(out[b*m*n+i*n+j])
				if !(math.Abs(got-want) <= 1e-5*(1+scale)) {
					return fmt.Errorf("out[%d,%d,%d] = %g, want %g", b, i, j, got, want)
				}
			}
		}
	}
	return nil
}
