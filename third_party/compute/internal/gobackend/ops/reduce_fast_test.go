// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/shapes"
)

// TestReduceFloat32FastMatchesGeneric compares the fast reductions with the generic iterator code
// on random shapes and axes: maxima exactly, sums within float32 rounding of a different order.
func TestReduceFloat32FastMatchesGeneric(t *testing.T) {
	b, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	backend := b.(*gobackend.Backend)
	rng := rand.New(rand.NewPCG(7, 8))
	supported := 0
	for trial := 0; trial < 400; trial++ {
		rank := 1 + rng.IntN(4)
		dims := make([]int, rank)
		var axes []int
		for i := range dims {
			dims[i] = []int{1, 2, 5, 9, 64, 300}[rng.IntN(6)]
			if rng.IntN(2) == 0 {
				axes = append(axes, i)
			}
		}
		if len(axes) == 0 {
			axes = []int{rng.IntN(rank)}
		}
		in := shapes.Make(dtypes.Float32, dims...)
		if in.Size() > 1<<20 {
			continue
		}
		x := make([]float32, in.Size())
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		outSize := 1
		for i, d := range dims {
			if !containsInt(axes, i) {
				outSize *= d
			}
		}
		for _, op := range []compute.OpType{compute.OpTypeReduceSum, compute.OpTypeReduceMax} {
			got := make([]float32, outSize)
			if !reduceFloat32Fast(backend, op, x, got, dims, axes) {
				continue
			}
			supported++
			want := make([]float32, outSize)
			operand := &gobackend.Buffer{RawShape: in, Flat: x}
			output := &gobackend.Buffer{RawShape: shapes.Make(dtypes.Float32, outSize), Flat: want}
			it := NewReduceOutputIterator(dims, axes)
			if op == compute.OpTypeReduceSum {
				_ = execReduceSumGeneric[float32](operand, output, it, dtypes.Float32)
			} else {
				_ = execReduceMaxGeneric[float32](operand, output, it, dtypes.Float32)
			}
			n := float64(in.Size() / outSize)
			for i := range want {
				tol := 0.0
				if op == compute.OpTypeReduceSum {
					tol = 4e-7 * n * math.Sqrt(n) // a different summation order
				}
				if math.Abs(float64(got[i]-want[i])) > tol {
					t.Fatalf("%s dims %v axes %v: output[%d] = %g, want %g", op, dims, axes, i, got[i], want[i])
				}
			}
		}
	}
	if supported < 300 {
		t.Errorf("only %d random reductions took the fast path", supported)
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
