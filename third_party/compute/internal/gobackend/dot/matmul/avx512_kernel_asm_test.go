// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package matmul

import (
	"math/rand/v2"
	"simd/archsimd"
	"testing"
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
