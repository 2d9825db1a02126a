// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package matmul

import (
	"simd/archsimd"
	"sync"

	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/internal/gobackend/dot"
)

// Batched small float32 matmuls with a short contracting axis (polo patch 0006).
//
// Attention in a small transformer is many [M, K]·[K, N] products with K = head size (16–64):
// the transposed small kernel did one horizontal vector reduction per output element, which made
// these products run at ~3 GFLOP/s. Here each batch item's rhs is packed once as [K, N16] (N
// padded to 16 lanes), and output tiles of 4 rows × 16 columns are accumulated in registers over
// K with broadcast-FMAs, then stored once.

// smallBatchedMaxK is the longest contracting axis handled here (one packed rhs must stay in L1).
const smallBatchedMaxK = 128

// smallBatchedMinRows is the fewest lhs rows for which packing the rhs pays off.
const smallBatchedMinRows = 8

// avx512SmallBatchedFloat32 computes the product if the shapes suit it and reports whether it did.
func avx512SmallBatchedFloat32(backend *gobackend.Backend, layout dot.Layout, lhs, rhs []float32,
	batchSize, lhsCrossSize, rhsCrossSize, contractingSize int, output []float32) bool {
	return smallBatchedFloat32(backend, layout, lhs, rhs, batchSize, lhsCrossSize, rhsCrossSize, contractingSize, output, smallBatchedKernel)
}

// avx2SmallBatchedFloat32 is avx512SmallBatchedFloat32 on 8-lane vectors, for x86 CPUs without
// AVX-512 (polo patch 0022; the same FMAs in the same order, so the same bits).
func avx2SmallBatchedFloat32(backend *gobackend.Backend, layout dot.Layout, lhs, rhs []float32,
	batchSize, lhsCrossSize, rhsCrossSize, contractingSize int, output []float32) bool {
	return smallBatchedFloat32(backend, layout, lhs, rhs, batchSize, lhsCrossSize, rhsCrossSize, contractingSize, output, avx2SmallBatchedKernel)
}

// smallBatchedFloat32 packs each batch item's rhs and runs kernel on it, batch items split over
// the workers.
func smallBatchedFloat32(backend *gobackend.Backend, layout dot.Layout, lhs, rhs []float32,
	batchSize, lhsCrossSize, rhsCrossSize, contractingSize int, output []float32,
	kernel func(lhs, packed, out []float32, m, n, k, nPad int)) bool {
	// Packing costs about as much as one output row: with few rows (a decode step's single query
	// per head) the unpacked kernels are faster.
	if contractingSize > smallBatchedMaxK || rhsCrossSize < 8 || lhsCrossSize < smallBatchedMinRows || contractingSize < 1 {
		return false
	}
	workers := 1
	if backend != nil && backend.Workers != nil && backend.Workers.IsEnabled() {
		workers = min(backend.Workers.AdjustedMaxParallelism(), batchSize)
	}
	chunk := (batchSize + workers - 1) / workers
	var wg sync.WaitGroup
	for start := 0; start < batchSize; start += chunk {
		end := min(start+chunk, batchSize)
		task := func() {
			defer wg.Done()
			nPad := (rhsCrossSize + 15) &^ 15
			packed := make([]float32, contractingSize*nPad)
			for b := start; b < end; b++ {
				packSmallRHS(layout, rhs[b*rhsCrossSize*contractingSize:(b+1)*rhsCrossSize*contractingSize], packed, rhsCrossSize, contractingSize, nPad)
				kernel(lhs[b*lhsCrossSize*contractingSize:(b+1)*lhsCrossSize*contractingSize], packed,
					output[b*lhsCrossSize*rhsCrossSize:(b+1)*lhsCrossSize*rhsCrossSize], lhsCrossSize, rhsCrossSize, contractingSize, nPad)
			}
		}
		wg.Add(1)
		if end == batchSize || backend == nil || !backend.Workers.StartIfAvailable(task) {
			task()
		}
	}
	wg.Wait()
	return true
}

// packSmallRHS writes rhs ([K, N] for LayoutNonTransposed, [N, K] for LayoutTransposed) as
// packed [K, nPad], zero-padded.
func packSmallRHS(layout dot.Layout, rhs, packed []float32, n, k, nPad int) {
	if layout == dot.LayoutNonTransposed {
		for kk := 0; kk < k; kk++ {
			row := packed[kk*nPad : (kk+1)*nPad]
			copy(row, rhs[kk*n:(kk+1)*n])
			clear(row[n:])
		}
		return
	}
	for kk := 0; kk < k; kk++ {
		row := packed[kk*nPad : (kk+1)*nPad]
		for j := 0; j < n; j++ {
			row[j] = rhs[j*k+kk]
		}
		clear(row[n:])
	}
}

// smallBatchedKernel computes out [m, n] = lhs [m, k] · packed [k, nPad].
func smallBatchedKernel(lhs, packed, out []float32, m, n, k, nPad int) {
	store := func(acc archsimd.Float32x16, row, col int) {
		if col+16 <= n {
			acc.StoreSlice(out[row*n+col:])
			return
		}
		// A masked store: no copy through a stack array, which the compiler does with legacy-SSE
		// moves (polo patch 0019).
		acc.StoreSlicePart(out[row*n+col : row*n+n])
	}
	row := 0
	for ; row+4 <= m; row += 4 {
		l0, l1, l2, l3 := lhs[row*k:(row+1)*k], lhs[(row+1)*k:(row+2)*k], lhs[(row+2)*k:(row+3)*k], lhs[(row+3)*k:(row+4)*k]
		for col := 0; col < nPad; col += 16 {
			var a0, a1, a2, a3 archsimd.Float32x16
			for kk := 0; kk < k; kk++ {
				r := archsimd.LoadFloat32x16Slice(packed[kk*nPad+col:])
				a0 = archsimd.BroadcastFloat32x16(l0[kk]).MulAdd(r, a0)
				a1 = archsimd.BroadcastFloat32x16(l1[kk]).MulAdd(r, a1)
				a2 = archsimd.BroadcastFloat32x16(l2[kk]).MulAdd(r, a2)
				a3 = archsimd.BroadcastFloat32x16(l3[kk]).MulAdd(r, a3)
			}
			store(a0, row, col)
			store(a1, row+1, col)
			store(a2, row+2, col)
			store(a3, row+3, col)
		}
	}
	for ; row < m; row++ {
		l0 := lhs[row*k : (row+1)*k]
		for col := 0; col < nPad; col += 16 {
			var a0 archsimd.Float32x16
			for kk := 0; kk < k; kk++ {
				a0 = archsimd.BroadcastFloat32x16(l0[kk]).MulAdd(archsimd.LoadFloat32x16Slice(packed[kk*nPad+col:]), a0)
			}
			store(a0, row, col)
		}
	}
	archsimd.ClearAVXUpperBits() // callers run scalar (legacy-SSE) code: polo patch 0019
}

// avx2SmallBatchedKernel is smallBatchedKernel on 8-lane vectors: out [m, n] = lhs [m, k] ·
// packed [k, nPad], output tiles of 4 rows × 16 columns in 8 ymm accumulators.
func avx2SmallBatchedKernel(lhs, packed, out []float32, m, n, k, nPad int) {
	store := func(acc archsimd.Float32x8, row, col int) {
		switch {
		case col+8 <= n:
			acc.StoreSlice(out[row*n+col:])
		case col < n:
			acc.StoreSlicePart(out[row*n+col : row*n+n]) // masked: no legacy-SSE copy (patch 0019)
		}
	}
	row := 0
	for ; row+4 <= m; row += 4 {
		l0, l1, l2, l3 := lhs[row*k:(row+1)*k], lhs[(row+1)*k:(row+2)*k], lhs[(row+2)*k:(row+3)*k], lhs[(row+3)*k:(row+4)*k]
		for col := 0; col < nPad; col += 16 {
			var a0, b0, a1, b1, a2, b2, a3, b3 archsimd.Float32x8
			for kk := 0; kk < k; kk++ {
				r0 := archsimd.LoadFloat32x8Slice(packed[kk*nPad+col:])
				r1 := archsimd.LoadFloat32x8Slice(packed[kk*nPad+col+8:])
				x := archsimd.BroadcastFloat32x8(l0[kk])
				a0, b0 = x.MulAdd(r0, a0), x.MulAdd(r1, b0)
				x = archsimd.BroadcastFloat32x8(l1[kk])
				a1, b1 = x.MulAdd(r0, a1), x.MulAdd(r1, b1)
				x = archsimd.BroadcastFloat32x8(l2[kk])
				a2, b2 = x.MulAdd(r0, a2), x.MulAdd(r1, b2)
				x = archsimd.BroadcastFloat32x8(l3[kk])
				a3, b3 = x.MulAdd(r0, a3), x.MulAdd(r1, b3)
			}
			store(a0, row, col)
			store(b0, row, col+8)
			store(a1, row+1, col)
			store(b1, row+1, col+8)
			store(a2, row+2, col)
			store(b2, row+2, col+8)
			store(a3, row+3, col)
			store(b3, row+3, col+8)
		}
	}
	for ; row < m; row++ {
		l0 := lhs[row*k : (row+1)*k]
		for col := 0; col < nPad; col += 16 {
			var a0, b0 archsimd.Float32x8
			for kk := 0; kk < k; kk++ {
				x := archsimd.BroadcastFloat32x8(l0[kk])
				a0 = x.MulAdd(archsimd.LoadFloat32x8Slice(packed[kk*nPad+col:]), a0)
				b0 = x.MulAdd(archsimd.LoadFloat32x8Slice(packed[kk*nPad+col+8:]), b0)
			}
			store(a0, row, col)
			store(b0, row, col+8)
		}
	}
	archsimd.ClearAVXUpperBits() // callers run scalar (legacy-SSE) code: polo patch 0019
}
