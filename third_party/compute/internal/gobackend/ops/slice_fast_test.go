// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/shapes"
)

// TestSliceRowsMatchesIndexing checks execSliceGeneric (row copies when the last axis has unit
// stride, polo patch 0011; element by element otherwise) against direct index arithmetic.
func TestSliceRowsMatchesIndexing(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for trial := 0; trial < 300; trial++ {
		rank := 1 + rng.IntN(4)
		dims, starts, limits, strides, outDims := make([]int, rank), make([]int, rank), make([]int, rank), make([]int, rank), make([]int, rank)
		for i := range dims {
			dims[i] = 1 + rng.IntN(9)
			starts[i] = rng.IntN(dims[i])
			limits[i] = starts[i] + 1 + rng.IntN(dims[i]-starts[i])
			strides[i] = 1 + rng.IntN(2)
			outDims[i] = (limits[i] - starts[i] + strides[i] - 1) / strides[i]
		}
		in := &gobackend.Buffer{RawShape: shapes.Make(dtypes.Float32, dims...)}
		flat := make([]float32, in.RawShape.Size())
		for i := range flat {
			flat[i] = float32(i)
		}
		in.Flat = flat
		out := &gobackend.Buffer{RawShape: shapes.Make(dtypes.Float32, outDims...)}
		got := make([]float32, out.RawShape.Size())
		out.Flat = got
		execSliceGeneric[float32](in, out, &sliceNode{starts: starts, limits: limits, strides: strides})
		inStrides := in.RawShape.Strides()
		idx := make([]int, rank)
		for o := range got {
			rem, src := o, 0
			for a := rank - 1; a >= 0; a-- {
				idx[a] = rem % outDims[a]
				rem /= outDims[a]
				src += (starts[a] + idx[a]*strides[a]) * inStrides[a]
			}
			if got[o] != flat[src] {
				t.Fatalf("dims %v starts %v limits %v strides %v: out[%d] = %g, want %g", dims, starts, limits, strides, o, got[o], flat[src])
			}
		}
	}
}
