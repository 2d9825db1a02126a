// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package matmul

import (
	"math"
	"math/rand/v2"
	"simd/archsimd"
	"testing"

	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/internal/gobackend/dot"
)

// TestSmallBatchedMatchesNaive checks the batched small kernel against a float64 triple loop for
// both layouts, ragged row and column tails, sequentially and over the workers.
func TestSmallBatchedMatchesNaive(t *testing.T) {
	if !archsimd.X86.AVX512() {
		t.Skip("no AVX-512 on this CPU")
	}
	b, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	backend := b.(*gobackend.Backend)
	rng := rand.New(rand.NewPCG(9, 10))
	for trial := 0; trial < 200; trial++ {
		batch, m, n, k := 1+rng.IntN(9), smallBatchedMinRows+rng.IntN(23), 8+rng.IntN(40), 1+rng.IntN(smallBatchedMaxK)
		layout := dot.Layout(rng.IntN(2))
		lhs, rhs := make([]float32, batch*m*k), make([]float32, batch*n*k)
		for i := range lhs {
			lhs[i] = float32(rng.NormFloat64())
		}
		for i := range rhs {
			rhs[i] = float32(rng.NormFloat64())
		}
		for _, be := range []*gobackend.Backend{nil, backend} {
			out := make([]float32, batch*m*n)
			if !avx512SmallBatchedFloat32(be, layout, lhs, rhs, batch, m, n, k, out) {
				t.Fatalf("shape b=%d m=%d n=%d k=%d not taken", batch, m, n, k)
			}
			for bi := 0; bi < batch; bi++ {
				for i := 0; i < m; i++ {
					for j := 0; j < n; j++ {
						var want float64
						for kk := 0; kk < k; kk++ {
							r := rhs[bi*n*k+kk*n+j] // [K, N]
							if layout == dot.LayoutTransposed {
								r = rhs[bi*n*k+j*k+kk] // [N, K]
							}
							want += float64(lhs[bi*m*k+i*k+kk]) * float64(r)
						}
						got := out[bi*m*n+i*n+j]
						if math.Abs(float64(got)-want) > 1e-5*math.Sqrt(float64(k))*(1+math.Abs(want)) {
							t.Fatalf("%s b=%d m=%d n=%d k=%d: out[%d,%d,%d] = %g, want %g", layout, batch, m, n, k, bi, i, j, got, want)
						}
					}
				}
			}
		}
	}
}
