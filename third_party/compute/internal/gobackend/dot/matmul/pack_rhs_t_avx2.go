// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package matmul

import (
	"simd/archsimd"
	"unsafe"
)

// Packing a transposed float32 rhs with 8x8 AVX2 transposes (polo patch 0010).
//
// With the rhs in transposed layout ([N, K], e.g. x·Wᵀ with the weight stored [out, in]), the
// AVX-512 large matmul packs each 32-row strip of the rhs into [k][32] (the AVX2 one 16-row strips) with unsafePackLHS, one
// element at a time with 32-element strides: ~6% of a small transformer's RL step on a 2-core
// AMD EPYC. Here full strips are moved in 8×8 tiles (8 loads, 24 shuffles, 8 stores); the k tail
// and a last partial strip go to unsafePackLHS. The packed panel is bit-identical.

// packTransposedRHSFloat32 packs like unsafePackLHS(..., kernelRows=strip) for float32 and
// reports whether it did (AVX2 present, strip a multiple of 8). The AVX-512 large matmul packs
// 32-row strips, the AVX2 one 16-row strips (polo patch 0023).
func packTransposedRHSFloat32(src, panel []float32, rowStart, colStart, srcCols, copyRows, contractingCols, strip int) bool {
	if !archsimd.X86.AVX2() || copyRows <= 0 || contractingCols <= 0 || strip%8 != 0 {
		return false
	}
	fullRows := copyRows / strip * strip
	k8 := contractingCols &^ 7
	for s := 0; s < fullRows; s += strip {
		dst := panel[s/strip*strip*contractingCols:]
		_ = dst[contractingCols*strip-1]
		for n0 := 0; n0 < strip; n0 += 8 {
			base := (rowStart+s+n0)*srcCols + colStart
			_ = src[base+7*srcCols+contractingCols-1]
			for k := 0; k < k8; k += 8 {
				p := base + k
				a0 := archsimd.LoadUint32x8((*[8]uint32)(unsafe.Pointer(&src[p])))
				a1 := archsimd.LoadUint32x8((*[8]uint32)(unsafe.Pointer(&src[p+srcCols])))
				a2 := archsimd.LoadUint32x8((*[8]uint32)(unsafe.Pointer(&src[p+2*srcCols])))
				a3 := archsimd.LoadUint32x8((*[8]uint32)(unsafe.Pointer(&src[p+3*srcCols])))
				a4 := archsimd.LoadUint32x8((*[8]uint32)(unsafe.Pointer(&src[p+4*srcCols])))
				a5 := archsimd.LoadUint32x8((*[8]uint32)(unsafe.Pointer(&src[p+5*srcCols])))
				a6 := archsimd.LoadUint32x8((*[8]uint32)(unsafe.Pointer(&src[p+6*srcCols])))
				a7 := archsimd.LoadUint32x8((*[8]uint32)(unsafe.Pointer(&src[p+7*srcCols])))
				t0, t1 := a0.InterleaveLoGrouped(a1).AsUint64x4(), a0.InterleaveHiGrouped(a1).AsUint64x4()
				t2, t3 := a2.InterleaveLoGrouped(a3).AsUint64x4(), a2.InterleaveHiGrouped(a3).AsUint64x4()
				t4, t5 := a4.InterleaveLoGrouped(a5).AsUint64x4(), a4.InterleaveHiGrouped(a5).AsUint64x4()
				t6, t7 := a6.InterleaveLoGrouped(a7).AsUint64x4(), a6.InterleaveHiGrouped(a7).AsUint64x4()
				u0, u1 := t0.InterleaveLoGrouped(t2).AsUint32x8(), t0.InterleaveHiGrouped(t2).AsUint32x8()
				u2, u3 := t1.InterleaveLoGrouped(t3).AsUint32x8(), t1.InterleaveHiGrouped(t3).AsUint32x8()
				v0, v1 := t4.InterleaveLoGrouped(t6).AsUint32x8(), t4.InterleaveHiGrouped(t6).AsUint32x8()
				v2, v3 := t5.InterleaveLoGrouped(t7).AsUint32x8(), t5.InterleaveHiGrouped(t7).AsUint32x8()
				q := k*strip + n0
				u0.Select128FromPair(0, 2, v0).Store((*[8]uint32)(unsafe.Pointer(&dst[q])))
				u1.Select128FromPair(0, 2, v1).Store((*[8]uint32)(unsafe.Pointer(&dst[q+strip])))
				u2.Select128FromPair(0, 2, v2).Store((*[8]uint32)(unsafe.Pointer(&dst[q+2*strip])))
				u3.Select128FromPair(0, 2, v3).Store((*[8]uint32)(unsafe.Pointer(&dst[q+3*strip])))
				u0.Select128FromPair(1, 3, v0).Store((*[8]uint32)(unsafe.Pointer(&dst[q+4*strip])))
				u1.Select128FromPair(1, 3, v1).Store((*[8]uint32)(unsafe.Pointer(&dst[q+5*strip])))
				u2.Select128FromPair(1, 3, v2).Store((*[8]uint32)(unsafe.Pointer(&dst[q+6*strip])))
				u3.Select128FromPair(1, 3, v3).Store((*[8]uint32)(unsafe.Pointer(&dst[q+7*strip])))
			}
			if k8 < contractingCols {
				// Scalar tail: leave the vector state clean first (polo patch 0019).
				archsimd.ClearAVXUpperBits()
				for k := k8; k < contractingCols; k++ {
					for i := 0; i < 8; i++ {
						dst[k*strip+n0+i] = src[base+i*srcCols+k]
					}
				}
			}
		}
	}
	archsimd.ClearAVXUpperBits() // the rest, and the caller, is scalar code: polo patch 0019
	if fullRows < copyRows {
		unsafePackLHS(src, panel[fullRows*contractingCols:], rowStart+fullRows, colStart, srcCols, copyRows-fullRows, contractingCols, strip)
	}
	return true
}
