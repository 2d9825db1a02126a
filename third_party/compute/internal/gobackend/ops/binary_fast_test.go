// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/shapes"
)

// TestBinaryFloat32MatchesGeneric compares the split float32 binary ops with the generated ones
// on random broadcasts, large enough to be split over the workers.
func TestBinaryFloat32MatchesGeneric(t *testing.T) {
	b, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	backend := b.(*gobackend.Backend)
	generic := map[compute.OpType]func(l, r, out []float32, ls, rs, os shapes.Shape){
		compute.OpTypeAdd: execAddNumericGeneric[float32], compute.OpTypeSub: execSubNumericGeneric[float32],
		compute.OpTypeMul: execMulNumericGeneric[float32], compute.OpTypeDiv: execDivNumericGeneric[float32],
		compute.OpTypeMax: execMaxNumericGeneric[float32], compute.OpTypeMin: execMinNumericGeneric[float32],
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 150; trial++ {
		rank := 1 + rng.IntN(4)
		tgt, lhs, rhs := make([]int, rank), make([]int, rank), make([]int, rank)
		for i := range tgt {
			tgt[i] = []int{1, 3, 13, 16, 40, 129}[rng.IntN(6)]
			lhs[i], rhs[i] = tgt[i], tgt[i]
			switch rng.IntN(4) {
			case 0:
				lhs[i] = 1
			case 1:
				rhs[i] = 1
			}
		}
		ls, rs, ts := shapes.Make(dtypes.Float32, lhs...), shapes.Make(dtypes.Float32, rhs...), shapes.Make(dtypes.Float32, tgt...)
		l, r := make([]float32, ls.Size()), make([]float32, rs.Size())
		for i := range l {
			l[i] = float32(rng.NormFloat64())
		}
		for i := range r {
			r[i] = float32(rng.NormFloat64())
		}
		for op, gen := range generic {
			want, got := make([]float32, ts.Size()), make([]float32, ts.Size())
			gen(l, r, want, ls, rs, ts)
			for _, rows := range []func(l, r, out []float32, n, rows, ls, rs, lStep, rStep int){nil, vectorRows(op)} {
				binaryFloat32(backend, withVectorLoops(op, float32BinaryFunc(op)), rows, l, r, got, ls, rs, ts)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%s %v ⊕ %v (rows loop %v): output[%d] = %g, want %g", op, lhs, rhs, rows != nil, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestBinaryOneElementFloat32 checks the path for a one-element operand of another rank (polo
// patch 0009), split over the workers or not, against the plain loops.
func TestBinaryOneElementFloat32(t *testing.T) {
	b, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	backend := b.(*gobackend.Backend)
	for _, n := range []int{256, 1001, 70001} {
		x, c := make([]float32, n), []float32{1.75}
		for i := range x {
			x[i] = float32(i%97) - 40
		}
		for _, op := range []compute.OpType{compute.OpTypeAdd, compute.OpTypeSub, compute.OpTypeMul, compute.OpTypeDiv, compute.OpTypeMax} {
			for _, scalarLeft := range []bool{false, true} {
				want, got := make([]float32, n), make([]float32, n)
				if scalarLeft {
					float32BinaryFunc(op)(c, x, want, 0, 1)
					binaryOneElementFloat32(backend, withVectorLoops(op, float32BinaryFunc(op)), c, x, got, 0, 1)
				} else {
					float32BinaryFunc(op)(x, c, want, 1, 0)
					binaryOneElementFloat32(backend, withVectorLoops(op, float32BinaryFunc(op)), x, c, got, 1, 0)
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%s n=%d scalarLeft=%v: out[%d] = %g, want %g", op, n, scalarLeft, i, got[i], want[i])
					}
				}
			}
		}
	}
}
