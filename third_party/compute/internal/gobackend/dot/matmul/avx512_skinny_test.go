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

// TestSkinnyMatchesNaive checks the skinny kernel (few rows times a transposed weight) against a
// float64 loop: odd weight-row counts, row tails, several batch items, over the workers or not.
func TestSkinnyMatchesNaive(t *testing.T) {
	if !archsimd.X86.AVX512() {
		t.Skip("no AVX-512 on this CPU")
	}
	b, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	backend := b.(*gobackend.Backend)
	rng := rand.New(rand.NewPCG(13, 14))
	for trial := 0; trial < 60; trial++ {
		batch, m, n, k := 1+rng.IntN(3), 1+rng.IntN(skinnyMaxRows), skinnyMinCols+rng.IntN(200), 16*(2+rng.IntN(20))
		lhs, rhs := make([]float32, batch*m*k), make([]float32, batch*n*k)
		for i := range lhs {
			lhs[i] = float32(rng.NormFloat64())
		}
		for i := range rhs {
			rhs[i] = float32(rng.NormFloat64())
		}
		for _, be := range []*gobackend.Backend{nil, backend} {
			out := make([]float32, batch*m*n)
			if !avx512SkinnyFloat32(be, dot.LayoutTransposed, lhs, rhs, batch, m, n, k, out) {
				t.Fatalf("b=%d m=%d n=%d k=%d not taken", batch, m, n, k)
			}
			for bi := 0; bi < batch; bi++ {
				for i := 0; i < m; i++ {
					for j := 0; j < n; j++ {
						var want float64
						for kk := 0; kk < k; kk++ {
							want += float64(lhs[bi*m*k+i*k+kk]) * float64(rhs[bi*n*k+j*k+kk])
						}
						if got := out[bi*m*n+i*n+j]; math.Abs(float64(got)-want) > 1e-5*math.Sqrt(float64(k))*(1+math.Abs(want)) {
							t.Fatalf("b=%d m=%d n=%d k=%d: out[%d,%d,%d] = %g, want %g", batch, m, n, k, bi, i, j, got, want)
						}
					}
				}
			}
		}
	}
	if avx512SkinnyFloat32(nil, dot.LayoutNonTransposed, make([]float32, 64), make([]float32, 64*64), 1, 1, 64, 64, make([]float32, 64)) {
		t.Error("non-transposed layout taken")
	}
}
