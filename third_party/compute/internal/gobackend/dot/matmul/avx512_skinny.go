// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package matmul

import (
	"simd/archsimd"
	"sync"

	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/internal/gobackend/dot"
)

// Skinny float32 products with the rhs in transposed layout (polo patch 0007).
//
// A decode step multiplies a few rows (one token per sequence) by each weight matrix [N, K]. The
// large kernel repacks the whole weight matrix on every call (a third of a decode step) to use it
// for a handful of rows. Here each pair of weight rows is read once, straight from the weight, and
// dotted with every lhs row in tiles of 2 weight rows × 4 lhs rows (8 vector accumulators along K),
// reduced horizontally at the end. The sums are stored with integer stores and the kernel leaves
// the vector state clean (patch 0019: no legacy-SSE instruction while the upper state is dirty).

const (
	skinnyMaxRows = 32 // lhs rows up to which the weights are not packed
	skinnyMinCols = 64 // rhs rows (N) from which splitting over workers pays off
)

// avx512SkinnyFloat32 computes the product if the shapes suit it and reports whether it did.
func avx512SkinnyFloat32(backend *gobackend.Backend, layout dot.Layout, lhs, rhs []float32,
	batchSize, lhsCrossSize, rhsCrossSize, contractingSize int, output []float32) bool {
	if layout != dot.LayoutTransposed || lhsCrossSize > skinnyMaxRows || rhsCrossSize < skinnyMinCols ||
		contractingSize%16 != 0 || contractingSize < 32 {
		return false
	}
	workers := 1
	if backend != nil && backend.Workers != nil && backend.Workers.IsEnabled() {
		workers = backend.Workers.AdjustedMaxParallelism()
	}
	m, n, k := lhsCrossSize, rhsCrossSize, contractingSize
	for b := 0; b < batchSize; b++ {
		l, r, out := lhs[b*m*k:(b+1)*m*k], rhs[b*n*k:(b+1)*n*k], output[b*m*n:(b+1)*m*n]
		// Split the weight rows (in pairs) over the workers.
		pairs := (n + 1) / 2
		chunk := (pairs + workers - 1) / workers
		var wg sync.WaitGroup
		for p0 := 0; p0 < pairs; p0 += chunk {
			p1 := min(p0+chunk, pairs)
			task := func() {
				defer wg.Done()
				skinnyKernel(l, r, out, m, n, k, 2*p0, min(2*p1, n))
			}
			wg.Add(1)
			if p1 == pairs || backend == nil || !backend.Workers.StartIfAvailable(task) {
				task()
			}
		}
		wg.Wait()
	}
	return true
}

// skinnyKernel computes out[:, n0:n1] of out [m, n] = lhs [m, k] · rhs [n, k]ᵀ; k is a multiple
// of 16.
func skinnyKernel(lhs, rhs, out []float32, m, n, k, n0, n1 int) {
	j := n0
	for ; j+2 <= n1; j += 2 {
		w0, w1 := rhs[j*k:(j+1)*k], rhs[(j+1)*k:(j+2)*k]
		i := 0
		for ; i+4 <= m; i += 4 {
			l0, l1, l2, l3 := lhs[i*k:(i+1)*k], lhs[(i+1)*k:(i+2)*k], lhs[(i+2)*k:(i+3)*k], lhs[(i+3)*k:(i+4)*k]
			var a00, a01, a02, a03, a10, a11, a12, a13 archsimd.Float32x16
			for kk := 0; kk < k; kk += 16 {
				v0, v1 := archsimd.LoadFloat32x16Slice(w0[kk:]), archsimd.LoadFloat32x16Slice(w1[kk:])
				x := archsimd.LoadFloat32x16Slice(l0[kk:])
				a00, a10 = x.MulAdd(v0, a00), x.MulAdd(v1, a10)
				x = archsimd.LoadFloat32x16Slice(l1[kk:])
				a01, a11 = x.MulAdd(v0, a01), x.MulAdd(v1, a11)
				x = archsimd.LoadFloat32x16Slice(l2[kk:])
				a02, a12 = x.MulAdd(v0, a02), x.MulAdd(v1, a12)
				x = archsimd.LoadFloat32x16Slice(l3[kk:])
				a03, a13 = x.MulAdd(v0, a03), x.MulAdd(v1, a13)
			}
			storeBits32(&out[i*n+j], avx512SumBitsFloat32x16(a00))
			storeBits32(&out[i*n+j+1], avx512SumBitsFloat32x16(a10))
			storeBits32(&out[(i+1)*n+j], avx512SumBitsFloat32x16(a01))
			storeBits32(&out[(i+1)*n+j+1], avx512SumBitsFloat32x16(a11))
			storeBits32(&out[(i+2)*n+j], avx512SumBitsFloat32x16(a02))
			storeBits32(&out[(i+2)*n+j+1], avx512SumBitsFloat32x16(a12))
			storeBits32(&out[(i+3)*n+j], avx512SumBitsFloat32x16(a03))
			storeBits32(&out[(i+3)*n+j+1], avx512SumBitsFloat32x16(a13))
		}
		for ; i < m; i++ {
			li := lhs[i*k : (i+1)*k]
			var a0, a1 archsimd.Float32x16
			for kk := 0; kk < k; kk += 16 {
				x := archsimd.LoadFloat32x16Slice(li[kk:])
				a0 = x.MulAdd(archsimd.LoadFloat32x16Slice(w0[kk:]), a0)
				a1 = x.MulAdd(archsimd.LoadFloat32x16Slice(w1[kk:]), a1)
			}
			storeBits32(&out[i*n+j], avx512SumBitsFloat32x16(a0))
			storeBits32(&out[i*n+j+1], avx512SumBitsFloat32x16(a1))
		}
	}
	for ; j < n1; j++ { // an odd last weight row
		w0 := rhs[j*k : (j+1)*k]
		for i := 0; i < m; i++ {
			li := lhs[i*k : (i+1)*k]
			var a0 archsimd.Float32x16
			for kk := 0; kk < k; kk += 16 {
				a0 = archsimd.LoadFloat32x16Slice(li[kk:]).MulAdd(archsimd.LoadFloat32x16Slice(w0[kk:]), a0)
			}
			storeBits32(&out[i*n+j], avx512SumBitsFloat32x16(a0))
		}
	}
	archsimd.ClearAVXUpperBits() // callers run scalar (legacy-SSE) code: patch 0019
}
