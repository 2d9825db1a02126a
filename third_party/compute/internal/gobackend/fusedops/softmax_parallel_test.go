// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package fusedops

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/internal/fastmath"
	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/shapes"
)

// TestSoftmaxSplitMatchesSequential checks that float32 softmax split over the workers (polo
// patch 0014) gives the sequential result bit for bit, on every axis.
func TestSoftmaxSplitMatchesSequential(t *testing.T) {
	b, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	backend := b.(*gobackend.Backend)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, dims := range [][]int{{64, 2, 13, 2, 13}, {7, 1000}, {3, 5}, {129, 65}, {64, 2, 13, 2, 40}} {
		shape := shapes.Make(dtypes.Float32, dims...)
		in := make([]float32, shape.Size())
		for i := range in {
			in[i] = float32(rng.NormFloat64() * 3)
		}
		for axis := range dims {
			want := make([]float32, len(in))
			fusedSoftmax(in, want, axis, shape, fastmath.Exp32)
			node := &gobackend.Node{Shape: shape, Data: &nodeFusedSoftmax{axis: axis}}
			out, err := execFusedSoftmax(backend, node, []*gobackend.Buffer{{RawShape: shape, Flat: in}}, []bool{false})
			if err != nil {
				t.Fatal(err)
			}
			got := out.Flat.([]float32)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%v axis %d: out[%d] = %g, want %g", dims, axis, i, got[i], want[i])
				}
			}
		}
	}
}
