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

// TestAsmPanelKernelMatchesGo checks the assembly micro-kernel (polo patch 0008) against the Go
// kernel on the same packed panels: every row and column count of a panel (odd strips, partial
// column tiles) and contracting lengths from 1. Both accumulate over k in the same order with
// FMAs, so the active outputs must be bit-identical.
func TestAsmPanelKernelMatchesGo(t *testing.T) {
	if !archsimd.X86.AVX512() {
		t.Skip("no AVX-512 on this CPU")
	}
	defer func() { useAsmPanelKernel = true }()
	p := AVX512ParamsFloat32
	rng := rand.New(rand.NewPCG(8, 8))
	lhs := make([]float32, p.LHSPanelCrossSize*p.PanelContractingSize)
	rhs := make([]float32, p.PanelContractingSize*p.RHSPanelCrossSize)
	for i := range lhs {
		lhs[i] = float32(rng.NormFloat64())
	}
	for i := range rhs {
		rhs[i] = float32(rng.NormFloat64())
	}
	outGo := make([]float32, p.LHSPanelCrossSize*p.RHSPanelCrossSize)
	outAsm := make([]float32, len(outGo))
	for trial := 0; trial < 300; trial++ {
		rows := 1 + rng.IntN(p.LHSPanelCrossSize)
		cols := 1 + rng.IntN(p.RHSPanelCrossSize)
		k := 1 + rng.IntN(p.PanelContractingSize)
		if trial < 4 {
			rows, cols, k = []int{1, 4, 8, 24}[trial], []int{1, 32, 33, 512}[trial], []int{1, 2, 128, 128}[trial]
		}
		for i := range outGo {
			outGo[i], outAsm[i] = -1, -2
		}
		useAsmPanelKernel = false
		avx512LargeKernelFloat32(lhs, rhs, outGo, p.LHSPanelCrossSize, p.RHSPanelCrossSize, k, rows, cols)
		useAsmPanelKernel = true
		avx512LargeKernelFloat32(lhs, rhs, outAsm, p.LHSPanelCrossSize, p.RHSPanelCrossSize, k, rows, cols)
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				i := r*p.RHSPanelCrossSize + c
				if outGo[i] != outAsm[i] {
					t.Fatalf("rows=%d cols=%d k=%d: out[%d,%d] asm %g, go %g", rows, cols, k, r, c, outAsm[i], outGo[i])
				}
			}
		}
	}
}

// TestAsmLargeMatmulMatchesNaive runs the whole large float32 matmul (packing, the assembly
// kernel writing whole tiles straight to the output and accumulating over contracting panels,
// partial tiles through the packed output) against a float64 loop, both layouts, with and
// without workers; work items split below one rhs panel (polo patch 0012).
func TestAsmLargeMatmulMatchesNaive(t *testing.T) {
	if !archsimd.X86.AVX512() {
		t.Skip("no AVX-512 on this CPU")
	}
	b, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	backend := b.(*gobackend.Backend)
	rng := rand.New(rand.NewPCG(9, 10))
	for _, s := range [][4]int{{1, 64, 128, 64}, {2, 52, 300, 384}, {1, 37, 129, 33}, {1, 100, 384, 600}, {3, 8, 16, 32}, {1, 832, 128, 15}, {1, 128, 832, 384}, {1, 100, 200, 130}, {1, 30, 64, 1100}} {
		batch, m, k, n := s[0], s[1], s[2], s[3]
		lhs, rhs := make([]float32, batch*m*k), make([]float32, batch*k*n)
		for i := range lhs {
			lhs[i] = float32(rng.NormFloat64())
		}
		for i := range rhs {
			rhs[i] = float32(rng.NormFloat64())
		}
		for _, layout := range []dot.Layout{dot.LayoutNonTransposed, dot.LayoutTransposed} {
			for _, be := range []*gobackend.Backend{backend} {
				out := make([]float32, batch*m*n)
				avx512LargeFloat32(be, layout, lhs, rhs, batch, m, n, k, out)
				for bi := 0; bi < batch; bi++ {
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							var want float64
							for kk := 0; kk < k; kk++ {
								r := rhs[bi*k*n+kk*n+j]
								if layout == dot.LayoutTransposed {
									r = rhs[bi*k*n+j*k+kk]
								}
								want += float64(lhs[bi*m*k+i*k+kk]) * float64(r)
							}
							if got := out[bi*m*n+i*n+j]; math.Abs(float64(got)-want) > 1e-5*math.Sqrt(float64(k))*(1+math.Abs(want)) {
								t.Fatalf("%v layout %v: out[%d,%d,%d] = %g, want %g", s, layout, bi, i, j, got, want)
							}
						}
					}
				}
			}
		}
	}
}
