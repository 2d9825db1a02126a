// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package ops

import (
	"simd/archsimd"

	"github.com/gomlx/compute"
)

// Vector loops for the float32 binary ops of binary_fast.go (polo patch 0009).
//
// The loops of patch 0004 are plain Go, which the compiler does not vectorise: one element per
// instruction. SwiGLU, RMSNorm and their gradients made float32 Mul ~11% of a small
// transformer's RL step on a 2-core AMD EPYC. Here Add, Sub, Mul and Div run on 8 AVX2 lanes
// (contiguous operands, or one of them a broadcast scalar); the tail and the both-scalar case go
// to the plain loops. Results are bit-identical (the same IEEE operation per element). Max and
// Min keep the plain loops (the vector instructions treat NaN differently).

// withVectorLoops returns f preceded by a vector loop for op, when there is one for this CPU.
func withVectorLoops(op compute.OpType, f func(l, r, out []float32, lStep, rStep int)) func(l, r, out []float32, lStep, rStep int) {
	if !archsimd.X86.AVX2() {
		return f
	}
	var v func(l, r, out []float32, lStep, rStep int) int
	switch op {
	case compute.OpTypeAdd:
		v = vectorAddFloat32
	case compute.OpTypeSub:
		v = vectorSubFloat32
	case compute.OpTypeMul:
		v = vectorMulFloat32
	case compute.OpTypeDiv:
		v = vectorDivFloat32
	default:
		return f
	}
	return func(l, r, out []float32, lStep, rStep int) {
		n := v(l, r, out, lStep, rStep)
		if n < len(out) {
			f(l[n*lStep:], r[n*rStep:], out[n:], lStep, rStep)
		}
	}
}

// vectorAddFloat32 computes the first multiple of 8 outputs and returns how many.
func vectorAddFloat32(l, r, out []float32, lStep, rStep int) int {
	n := len(out) &^ 7
	switch {
	case lStep == 1 && rStep == 1:
		l, r := l[:n], r[:n]
		for i := 0; i < n; i += 8 {
			archsimd.LoadFloat32x8Slice(l[i:]).Add(archsimd.LoadFloat32x8Slice(r[i:])).StoreSlice(out[i:])
		}
	case lStep == 1:
		l, c := l[:n], archsimd.BroadcastFloat32x8(r[0])
		for i := 0; i < n; i += 8 {
			archsimd.LoadFloat32x8Slice(l[i:]).Add(c).StoreSlice(out[i:])
		}
	case rStep == 1:
		c, r := archsimd.BroadcastFloat32x8(l[0]), r[:n]
		for i := 0; i < n; i += 8 {
			c.Add(archsimd.LoadFloat32x8Slice(r[i:])).StoreSlice(out[i:])
		}
	default:
		return 0
	}
	archsimd.ClearAVXUpperBits() // the caller runs the scalar tail: polo patch 0019
	return n
}

// vectorSubFloat32 computes the first multiple of 8 outputs and returns how many.
func vectorSubFloat32(l, r, out []float32, lStep, rStep int) int {
	n := len(out) &^ 7
	switch {
	case lStep == 1 && rStep == 1:
		l, r := l[:n], r[:n]
		for i := 0; i < n; i += 8 {
			archsimd.LoadFloat32x8Slice(l[i:]).Sub(archsimd.LoadFloat32x8Slice(r[i:])).StoreSlice(out[i:])
		}
	case lStep == 1:
		l, c := l[:n], archsimd.BroadcastFloat32x8(r[0])
		for i := 0; i < n; i += 8 {
			archsimd.LoadFloat32x8Slice(l[i:]).Sub(c).StoreSlice(out[i:])
		}
	case rStep == 1:
		c, r := archsimd.BroadcastFloat32x8(l[0]), r[:n]
		for i := 0; i < n; i += 8 {
			c.Sub(archsimd.LoadFloat32x8Slice(r[i:])).StoreSlice(out[i:])
		}
	default:
		return 0
	}
	archsimd.ClearAVXUpperBits() // the caller runs the scalar tail: polo patch 0019
	return n
}

// vectorMulFloat32 computes the first multiple of 8 outputs and returns how many.
func vectorMulFloat32(l, r, out []float32, lStep, rStep int) int {
	n := len(out) &^ 7
	switch {
	case lStep == 1 && rStep == 1:
		l, r := l[:n], r[:n]
		for i := 0; i < n; i += 8 {
			archsimd.LoadFloat32x8Slice(l[i:]).Mul(archsimd.LoadFloat32x8Slice(r[i:])).StoreSlice(out[i:])
		}
	case lStep == 1:
		l, c := l[:n], archsimd.BroadcastFloat32x8(r[0])
		for i := 0; i < n; i += 8 {
			archsimd.LoadFloat32x8Slice(l[i:]).Mul(c).StoreSlice(out[i:])
		}
	case rStep == 1:
		c, r := archsimd.BroadcastFloat32x8(l[0]), r[:n]
		for i := 0; i < n; i += 8 {
			c.Mul(archsimd.LoadFloat32x8Slice(r[i:])).StoreSlice(out[i:])
		}
	default:
		return 0
	}
	archsimd.ClearAVXUpperBits() // the caller runs the scalar tail: polo patch 0019
	return n
}

// vectorDivFloat32 computes the first multiple of 8 outputs and returns how many.
func vectorDivFloat32(l, r, out []float32, lStep, rStep int) int {
	n := len(out) &^ 7
	switch {
	case lStep == 1 && rStep == 1:
		l, r := l[:n], r[:n]
		for i := 0; i < n; i += 8 {
			archsimd.LoadFloat32x8Slice(l[i:]).Div(archsimd.LoadFloat32x8Slice(r[i:])).StoreSlice(out[i:])
		}
	case lStep == 1:
		l, c := l[:n], archsimd.BroadcastFloat32x8(r[0])
		for i := 0; i < n; i += 8 {
			archsimd.LoadFloat32x8Slice(l[i:]).Div(c).StoreSlice(out[i:])
		}
	case rStep == 1:
		c, r := archsimd.BroadcastFloat32x8(l[0]), r[:n]
		for i := 0; i < n; i += 8 {
			c.Div(archsimd.LoadFloat32x8Slice(r[i:])).StoreSlice(out[i:])
		}
	default:
		return 0
	}
	archsimd.ClearAVXUpperBits() // the caller runs the scalar tail: polo patch 0019
	return n
}

// Rows of short runs (polo patch 0013). Broadcasts such as RoPE's [B,T,H,16]×[B,T,1,16] or the
// attention softmax's [..,13]×[..,1] are runs of 13–16 elements: one iterator step and three calls
// per run cost more than the arithmetic. vectorRows returns, for op, a loop over `rows` runs of n
// elements whose operands start i*ls and i*rs apart (the innermost outer axis of the broadcast).

// vectorRows returns the rows loop for op, or nil.
func vectorRows(op compute.OpType) func(l, r, out []float32, n, rows, ls, rs, lStep, rStep int) {
	if !archsimd.X86.AVX2() {
		return nil
	}
	switch op {
	case compute.OpTypeAdd:
		return vectorAddRowsFloat32
	case compute.OpTypeSub:
		return vectorSubRowsFloat32
	case compute.OpTypeMul:
		return vectorMulRowsFloat32
	case compute.OpTypeDiv:
		return vectorDivRowsFloat32
	}
	return nil
}

func vectorAddRowsFloat32(l, r, out []float32, n, rows, ls, rs, lStep, rStep int) {
	n8 := n &^ 7
	switch {
	case lStep == 1 && rStep == 1:
		for i := 0; i < rows; i++ {
			li, ri, oi := l[i*ls:i*ls+n], r[i*rs:i*rs+n], out[i*n:i*n+n]
			j := 0
			for ; j < n8; j += 8 {
				archsimd.LoadFloat32x8Slice(li[j:]).Add(archsimd.LoadFloat32x8Slice(ri[j:])).StoreSlice(oi[j:])
			}
			if j < n { // the tail as masked vector loads and store (polo patch 0019)
				archsimd.LoadFloat32x8SlicePart(li[j:]).Add(archsimd.LoadFloat32x8SlicePart(ri[j:])).StoreSlicePart(oi[j:])
			}
		}
	case lStep == 1:
		for i := 0; i < rows; i++ {
			li, c, oi := l[i*ls:i*ls+n], r[i*rs], out[i*n:i*n+n]
			cv := archsimd.BroadcastFloat32x8(c)
			j := 0
			for ; j < n8; j += 8 {
				archsimd.LoadFloat32x8Slice(li[j:]).Add(cv).StoreSlice(oi[j:])
			}
			if j < n { // the tail as masked vector loads and store (polo patch 0019)
				archsimd.LoadFloat32x8SlicePart(li[j:]).Add(cv).StoreSlicePart(oi[j:])
			}
		}
	case rStep == 1:
		for i := 0; i < rows; i++ {
			c, ri, oi := l[i*ls], r[i*rs:i*rs+n], out[i*n:i*n+n]
			cv := archsimd.BroadcastFloat32x8(c)
			j := 0
			for ; j < n8; j += 8 {
				cv.Add(archsimd.LoadFloat32x8Slice(ri[j:])).StoreSlice(oi[j:])
			}
			if j < n { // the tail as masked vector loads and store (polo patch 0019)
				cv.Add(archsimd.LoadFloat32x8SlicePart(ri[j:])).StoreSlicePart(oi[j:])
			}
		}
	default:
		// Scalar code only, but the compiler may hoist a vector constant above the switch.
		archsimd.ClearAVXUpperBits()
		for i := 0; i < rows; i++ {
			v, oi := l[i*ls]+r[i*rs], out[i*n:i*n+n]
			for j := range oi {
				oi[j] = v
			}
		}
	}
	archsimd.ClearAVXUpperBits() // callers run scalar (legacy-SSE) code: polo patch 0019
}

func vectorSubRowsFloat32(l, r, out []float32, n, rows, ls, rs, lStep, rStep int) {
	n8 := n &^ 7
	switch {
	case lStep == 1 && rStep == 1:
		for i := 0; i < rows; i++ {
			li, ri, oi := l[i*ls:i*ls+n], r[i*rs:i*rs+n], out[i*n:i*n+n]
			j := 0
			for ; j < n8; j += 8 {
				archsimd.LoadFloat32x8Slice(li[j:]).Sub(archsimd.LoadFloat32x8Slice(ri[j:])).StoreSlice(oi[j:])
			}
			if j < n { // the tail as masked vector loads and store (polo patch 0019)
				archsimd.LoadFloat32x8SlicePart(li[j:]).Sub(archsimd.LoadFloat32x8SlicePart(ri[j:])).StoreSlicePart(oi[j:])
			}
		}
	case lStep == 1:
		for i := 0; i < rows; i++ {
			li, c, oi := l[i*ls:i*ls+n], r[i*rs], out[i*n:i*n+n]
			cv := archsimd.BroadcastFloat32x8(c)
			j := 0
			for ; j < n8; j += 8 {
				archsimd.LoadFloat32x8Slice(li[j:]).Sub(cv).StoreSlice(oi[j:])
			}
			if j < n { // the tail as masked vector loads and store (polo patch 0019)
				archsimd.LoadFloat32x8SlicePart(li[j:]).Sub(cv).StoreSlicePart(oi[j:])
			}
		}
	case rStep == 1:
		for i := 0; i < rows; i++ {
			c, ri, oi := l[i*ls], r[i*rs:i*rs+n], out[i*n:i*n+n]
			cv := archsimd.BroadcastFloat32x8(c)
			j := 0
			for ; j < n8; j += 8 {
				cv.Sub(archsimd.LoadFloat32x8Slice(ri[j:])).StoreSlice(oi[j:])
			}
			if j < n { // the tail as masked vector loads and store (polo patch 0019)
				cv.Sub(archsimd.LoadFloat32x8SlicePart(ri[j:])).StoreSlicePart(oi[j:])
			}
		}
	default:
		// Scalar code only, but the compiler may hoist a vector constant above the switch.
		archsimd.ClearAVXUpperBits()
		for i := 0; i < rows; i++ {
			v, oi := l[i*ls]-r[i*rs], out[i*n:i*n+n]
			for j := range oi {
				oi[j] = v
			}
		}
	}
	archsimd.ClearAVXUpperBits() // callers run scalar (legacy-SSE) code: polo patch 0019
}

func vectorMulRowsFloat32(l, r, out []float32, n, rows, ls, rs, lStep, rStep int) {
	n8 := n &^ 7
	switch {
	case lStep == 1 && rStep == 1:
		for i := 0; i < rows; i++ {
			li, ri, oi := l[i*ls:i*ls+n], r[i*rs:i*rs+n], out[i*n:i*n+n]
			j := 0
			for ; j < n8; j += 8 {
				archsimd.LoadFloat32x8Slice(li[j:]).Mul(archsimd.LoadFloat32x8Slice(ri[j:])).StoreSlice(oi[j:])
			}
			if j < n { // the tail as masked vector loads and store (polo patch 0019)
				archsimd.LoadFloat32x8SlicePart(li[j:]).Mul(archsimd.LoadFloat32x8SlicePart(ri[j:])).StoreSlicePart(oi[j:])
			}
		}
	case lStep == 1:
		for i := 0; i < rows; i++ {
			li, c, oi := l[i*ls:i*ls+n], r[i*rs], out[i*n:i*n+n]
			cv := archsimd.BroadcastFloat32x8(c)
			j := 0
			for ; j < n8; j += 8 {
				archsimd.LoadFloat32x8Slice(li[j:]).Mul(cv).StoreSlice(oi[j:])
			}
			if j < n { // the tail as masked vector loads and store (polo patch 0019)
				archsimd.LoadFloat32x8SlicePart(li[j:]).Mul(cv).StoreSlicePart(oi[j:])
			}
		}
	case rStep == 1:
		for i := 0; i < rows; i++ {
			c, ri, oi := l[i*ls], r[i*rs:i*rs+n], out[i*n:i*n+n]
			cv := archsimd.BroadcastFloat32x8(c)
			j := 0
			for ; j < n8; j += 8 {
				cv.Mul(archsimd.LoadFloat32x8Slice(ri[j:])).StoreSlice(oi[j:])
			}
			if j < n { // the tail as masked vector loads and store (polo patch 0019)
				cv.Mul(archsimd.LoadFloat32x8SlicePart(ri[j:])).StoreSlicePart(oi[j:])
			}
		}
	default:
		// Scalar code only, but the compiler may hoist a vector constant above the switch.
		archsimd.ClearAVXUpperBits()
		for i := 0; i < rows; i++ {
			v, oi := l[i*ls]*r[i*rs], out[i*n:i*n+n]
			for j := range oi {
				oi[j] = v
			}
		}
	}
	archsimd.ClearAVXUpperBits() // callers run scalar (legacy-SSE) code: polo patch 0019
}

func vectorDivRowsFloat32(l, r, out []float32, n, rows, ls, rs, lStep, rStep int) {
	n8 := n &^ 7
	switch {
	case lStep == 1 && rStep == 1:
		for i := 0; i < rows; i++ {
			li, ri, oi := l[i*ls:i*ls+n], r[i*rs:i*rs+n], out[i*n:i*n+n]
			j := 0
			for ; j < n8; j += 8 {
				archsimd.LoadFloat32x8Slice(li[j:]).Div(archsimd.LoadFloat32x8Slice(ri[j:])).StoreSlice(oi[j:])
			}
			if j < n { // the tail as masked vector loads and store (polo patch 0019)
				archsimd.LoadFloat32x8SlicePart(li[j:]).Div(archsimd.LoadFloat32x8SlicePart(ri[j:])).StoreSlicePart(oi[j:])
			}
		}
	case lStep == 1:
		for i := 0; i < rows; i++ {
			li, c, oi := l[i*ls:i*ls+n], r[i*rs], out[i*n:i*n+n]
			cv := archsimd.BroadcastFloat32x8(c)
			j := 0
			for ; j < n8; j += 8 {
				archsimd.LoadFloat32x8Slice(li[j:]).Div(cv).StoreSlice(oi[j:])
			}
			if j < n { // the tail as masked vector loads and store (polo patch 0019)
				archsimd.LoadFloat32x8SlicePart(li[j:]).Div(cv).StoreSlicePart(oi[j:])
			}
		}
	case rStep == 1:
		for i := 0; i < rows; i++ {
			c, ri, oi := l[i*ls], r[i*rs:i*rs+n], out[i*n:i*n+n]
			cv := archsimd.BroadcastFloat32x8(c)
			j := 0
			for ; j < n8; j += 8 {
				cv.Div(archsimd.LoadFloat32x8Slice(ri[j:])).StoreSlice(oi[j:])
			}
			if j < n { // the tail as masked vector loads and store (polo patch 0019)
				cv.Div(archsimd.LoadFloat32x8SlicePart(ri[j:])).StoreSlicePart(oi[j:])
			}
		}
	default:
		// Scalar code only, but the compiler may hoist a vector constant above the switch.
		archsimd.ClearAVXUpperBits()
		for i := 0; i < rows; i++ {
			v, oi := l[i*ls]/r[i*rs], out[i*n:i*n+n]
			for j := range oi {
				oi[j] = v
			}
		}
	}
	archsimd.ClearAVXUpperBits() // callers run scalar (legacy-SSE) code: polo patch 0019
}
