// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package ops

import "simd/archsimd"

func init() {
	if archsimd.X86.AVX2() {
		transposeTile32 = transposeTile32AVX2
	}
}

// transposeTile32AVX2 transposes 8 rows in 8×8 blocks held in eight 256-bit registers: 32-bit
// interleaves, then 64-bit interleaves, then 128-bit lane selects (the classic 24-shuffle scheme).
func transposeTile32AVX2(operand, output []uint32, in, out, cols, inR, outL int) int {
	c := 0
	for ; c+8 <= cols; c += 8 {
		p := in + c
		a0 := archsimd.LoadUint32x8Slice(operand[p:])
		a1 := archsimd.LoadUint32x8Slice(operand[p+inR:])
		a2 := archsimd.LoadUint32x8Slice(operand[p+2*inR:])
		a3 := archsimd.LoadUint32x8Slice(operand[p+3*inR:])
		a4 := archsimd.LoadUint32x8Slice(operand[p+4*inR:])
		a5 := archsimd.LoadUint32x8Slice(operand[p+5*inR:])
		a6 := archsimd.LoadUint32x8Slice(operand[p+6*inR:])
		a7 := archsimd.LoadUint32x8Slice(operand[p+7*inR:])

		t0, t1 := a0.InterleaveLoGrouped(a1).AsUint64x4(), a0.InterleaveHiGrouped(a1).AsUint64x4()
		t2, t3 := a2.InterleaveLoGrouped(a3).AsUint64x4(), a2.InterleaveHiGrouped(a3).AsUint64x4()
		t4, t5 := a4.InterleaveLoGrouped(a5).AsUint64x4(), a4.InterleaveHiGrouped(a5).AsUint64x4()
		t6, t7 := a6.InterleaveLoGrouped(a7).AsUint64x4(), a6.InterleaveHiGrouped(a7).AsUint64x4()

		// u_k holds column k of rows 0–3 (low lane) and column k+4 of rows 0–3 (high lane); v_k
		// the same for rows 4–7.
		u0, u1 := t0.InterleaveLoGrouped(t2).AsUint32x8(), t0.InterleaveHiGrouped(t2).AsUint32x8()
		u2, u3 := t1.InterleaveLoGrouped(t3).AsUint32x8(), t1.InterleaveHiGrouped(t3).AsUint32x8()
		v0, v1 := t4.InterleaveLoGrouped(t6).AsUint32x8(), t4.InterleaveHiGrouped(t6).AsUint32x8()
		v2, v3 := t5.InterleaveLoGrouped(t7).AsUint32x8(), t5.InterleaveHiGrouped(t7).AsUint32x8()

		q := out + c*outL
		u0.Select128FromPair(0, 2, v0).StoreSlice(output[q:])
		u1.Select128FromPair(0, 2, v1).StoreSlice(output[q+outL:])
		u2.Select128FromPair(0, 2, v2).StoreSlice(output[q+2*outL:])
		u3.Select128FromPair(0, 2, v3).StoreSlice(output[q+3*outL:])
		u0.Select128FromPair(1, 3, v0).StoreSlice(output[q+4*outL:])
		u1.Select128FromPair(1, 3, v1).StoreSlice(output[q+5*outL:])
		u2.Select128FromPair(1, 3, v2).StoreSlice(output[q+6*outL:])
		u3.Select128FromPair(1, 3, v3).StoreSlice(output[q+7*outL:])
	}
	archsimd.ClearAVXUpperBits() // the caller runs scalar code: polo patch 0019
	return c
}
