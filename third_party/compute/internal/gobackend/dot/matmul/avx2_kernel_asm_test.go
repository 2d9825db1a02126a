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

// TestAVX2AsmPanelKernelMatchesGo checks the AVX2 assembly micro-kernel (polo patch 0021) against
// the Go kernel on the same packed panels: every row and column count of a panel (partial strips
// and column tiles) and contracting lengths from 1 (odd and even, for the unrolled k loop). Both
// accumulate over k in the same order with FMAs, so the outputs must be bit-identical, padding
// rows and columns of the touched tiles included.
func TestAVX2AsmPanelKernelMatchesGo(t *testing.T) {
	if !archsimd.X86.AVX2() || !archsimd.X86.FMA() {
		t.Skip("no AVX2+FMA on this CPU")
	}
	defer func() { useAsmPanelKernel = true }()
	p := AVX2ParamsFloat32
	rng := rand.New(rand.NewPCG(21, 21))
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
		if trial < 5 {
			rows, cols, k = []int{1, 4, 5, 8, p.LHSPanelCrossSize}[trial], []int{1, 16, 17, 32, p.RHSPanelCrossSize}[trial], []int{1, 2, 3, 128, p.PanelContractingSize}[trial]
		}
		for i := range outGo {
			outGo[i], outAsm[i] = -1, -1
		}
		useAsmPanelKernel = false
		avx2LargeKernelFloat32(lhs, rhs, outGo, p.LHSPanelCrossSize, p.RHSPanelCrossSize, k, rows, cols)
		useAsmPanelKernel = true
		avx2LargeKernelFloat32(lhs, rhs, outAsm, p.LHSPanelCrossSize, p.RHSPanelCrossSize, k, rows, cols)
		for i := range outGo {
			if math.Float32bits(outGo[i]) != math.Float32bits(outAsm[i]) {
				t.Fatalf("rows=%d cols=%d k=%d: out[%d,%d] asm %g, go %g", rows, cols, k,
					i/p.RHSPanelCrossSize, i%p.RHSPanelCrossSize, outAsm[i], outGo[i])
			}
		}
	}
}

// TestAVX2AsmLargeMatmulMatchesNaive runs the whole AVX2 large float32 matmul (packing, the
// assembly kernel writing whole tiles to the output over several contracting panels, partial
// tiles through the packed output) against a float64 loop and against the Go kernel, both
// layouts.
func TestAVX2AsmLargeMatmulMatchesNaive(t *testing.T) {
	if !archsimd.X86.AVX2() || !archsimd.X86.FMA() {
		t.Skip("no AVX2+FMA on this CPU")
	}
	defer func() { useAsmPanelKernel = true }()
	b, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	backend := b.(*gobackend.Backend)
	rng := rand.New(rand.NewPCG(22, 23))
	for _, s := range [][4]int{{1, 64, 128, 64}, {2, 52, 300, 384}, {1, 37, 129, 33}, {1, 100, 384, 600}, {3, 8, 16, 32}, {1, 832, 128, 15}, {1, 30, 64, 1100}} {
		batch, m, k, n := s[0], s[1], s[2], s[3]
		lhs, rhs := make([]float32, batch*m*k), make([]float32, batch*k*n)
		for i := range lhs {
			lhs[i] = float32(rng.NormFloat64())
		}
		for i := range rhs {
			rhs[i] = float32(rng.NormFloat64())
		}
		for _, layout := range []dot.Layout{dot.LayoutNonTransposed, dot.LayoutTransposed} {
			out := make([]float32, batch*m*n)
			avx2LargeFloat32(backend, layout, lhs, rhs, batch, m, n, k, out)
			// Bit for bit against the Go kernel and the packed-output pass (whole tiles go straight
			// to the output with the assembly, patch 0026).
			useAsmPanelKernel = false
			ref := make([]float32, len(out))
			avx2LargeFloat32(backend, layout, lhs, rhs, batch, m, n, k, ref)
			useAsmPanelKernel = true
			for i := range out {
				if math.Float32bits(out[i]) != math.Float32bits(ref[i]) {
					t.Fatalf("%v layout %v: out[%d] asm %g, go %g", s, layout, i, out[i], ref[i])
				}
			}
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

// TestAVX2SmallBatchedMatchesAVX512 checks the AVX2 batched small kernel (polo patch 0022) against
// a float64 loop, both layouts, and bit for bit against the AVX-512 kernel where the CPU has one
// (same FMAs in the same order).
func TestAVX2SmallBatchedMatchesAVX512(t *testing.T) {
	if !archsimd.X86.AVX2() || !archsimd.X86.FMA() {
		t.Skip("no AVX2+FMA on this CPU")
	}
	b, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	backend := b.(*gobackend.Backend)
	rng := rand.New(rand.NewPCG(24, 25))
	for _, s := range [][4]int{{8, 13, 16, 13}, {3, 8, 64, 8}, {16, 33, 32, 17}, {1, 9, 1, 40}, {4, 12, 128, 31}, {2, 10, 7, 100}} {
		batch, m, k, n := s[0], s[1], s[2], s[3]
		lhs, rhs := make([]float32, batch*m*k), make([]float32, batch*k*n)
		for i := range lhs {
			lhs[i] = float32(rng.NormFloat64())
		}
		for i := range rhs {
			rhs[i] = float32(rng.NormFloat64())
		}
		for _, layout := range []dot.Layout{dot.LayoutNonTransposed, dot.LayoutTransposed} {
			out := make([]float32, batch*m*n)
			if !avx2SmallBatchedFloat32(backend, layout, lhs, rhs, batch, m, n, k, out) {
				t.Fatalf("%v: shape refused", s)
			}
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
			if archsimd.X86.AVX512() {
				ref := make([]float32, len(out))
				avx512SmallBatchedFloat32(backend, layout, lhs, rhs, batch, m, n, k, ref)
				for i := range out {
					if math.Float32bits(out[i]) != math.Float32bits(ref[i]) {
						t.Fatalf("%v layout %v: out[%d] avx2 %g, avx512 %g", s, layout, i, out[i], ref[i])
					}
				}
			}
		}
	}
}
