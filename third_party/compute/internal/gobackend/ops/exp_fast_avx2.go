// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package ops

import (
	"math"

	"simd/archsimd"
)

func init() {
	if archsimd.X86.AVX2() && archsimd.X86.FMA() {
		exp32Vector = exp32AVX2
		logistic32Vector = logistic32AVX2
		tanh32Vector = tanh32AVX2
	}
}

// exp8 is exp32 on 8 lanes (all VEX-encoded instructions).
func exp8(x archsimd.Float32x8) archsimd.Float32x8 {
	b := archsimd.BroadcastFloat32x8
	xc := x.Max(b(exp32MinArg)).Min(b(exp32MaxArg))
	n := xc.MulAdd(b(exp32Log2E), b(0.5)).Floor()
	g := n.MulAdd(b(-exp32Ln2Hi), xc)
	g = n.MulAdd(b(-exp32Ln2Lo), g)
	p := b(exp32P0).MulAdd(g, b(exp32P1))
	p = p.MulAdd(g, b(exp32P2))
	p = p.MulAdd(g, b(exp32P3))
	p = p.MulAdd(g, b(exp32P4))
	p = p.MulAdd(g, b(exp32P5))
	e := p.Mul(g.Mul(g)).Add(g).Add(b(1))
	// 2ⁿ in two halves (n may be 128).
	ni := n.ConvertToInt32()
	h := ni.ShiftAllRight(1)
	bias := archsimd.BroadcastInt32x8(127)
	s1 := h.Add(bias).ShiftAllLeft(23).AsFloat32x8()
	s2 := ni.Sub(h).Add(bias).ShiftAllLeft(23).AsFloat32x8()
	r := e.Mul(s1).Mul(s2)
	r = b(float32(math.Inf(1))).Merge(r, x.Greater(b(exp32MaxArg)))
	r = archsimd.Float32x8{}.Merge(r, x.Less(b(exp32MinArg)))
	return x.Merge(r, x.IsNaN())
}

func exp32AVX2(in, out []float32) int {
	n := len(in) &^ 7
	for i := 0; i < n; i += 8 {
		exp8(archsimd.LoadFloat32x8Slice(in[i:])).StoreSlice(out[i:])
	}
	archsimd.ClearAVXUpperBits() // the caller runs the scalar tail: polo patch 0019
	return n
}

func logistic32AVX2(in, out []float32) int {
	n := len(in) &^ 7
	one := archsimd.BroadcastFloat32x8(1)
	zero := archsimd.Float32x8{}
	for i := 0; i < n; i += 8 {
		x := archsimd.LoadFloat32x8Slice(in[i:])
		one.Div(one.Add(exp8(zero.Sub(x)))).StoreSlice(out[i:])
	}
	archsimd.ClearAVXUpperBits() // the caller runs the scalar tail: polo patch 0019
	return n
}

func tanh32AVX2(in, out []float32) int {
	n := len(in) &^ 7
	b := archsimd.BroadcastFloat32x8
	one, two, zero := b(1), b(2), archsimd.Float32x8{}
	for i := 0; i < n; i += 8 {
		x := archsimd.LoadFloat32x8Slice(in[i:])
		a := x.Max(zero.Sub(x))
		// |x| ≥ 0.625: 1 − 2/(e^{2|x|}+1), sign restored.
		big := one.Sub(two.Div(exp8(a.Add(a)).Add(one)))
		big = zero.Sub(big).Merge(big, x.Less(zero))
		// |x| < 0.625: x + x·z·P(z)/Q(z).
		z := x.Mul(x)
		p := b(tanhP0).MulAdd(z, b(tanhP1)).MulAdd(z, b(tanhP2))
		q := z.Add(b(tanhQ0)).MulAdd(z, b(tanhQ1)).MulAdd(z, b(tanhQ2))
		small := x.Mul(z).Mul(p.Div(q)).Add(x)
		r := small.Merge(big, a.Less(b(0.625)))
		x.Merge(r, x.IsNaN()).StoreSlice(out[i:])
	}
	archsimd.ClearAVXUpperBits() // the caller runs the scalar tail: polo patch 0019
	return n
}
