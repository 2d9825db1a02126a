// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

import (
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/shapes"
)

// TestTransposeUnitAxesIsReshape checks polo patch 0015: a transpose that only moves unit axes
// returns the data unchanged under the new shape, reusing an owned input and copying otherwise.
func TestTransposeUnitAxesIsReshape(t *testing.T) {
	b, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	backend := b.(*gobackend.Backend)
	inShape := shapes.Make(dtypes.Float32, 2, 1, 3, 1)
	outShape := shapes.Make(dtypes.Float32, 1, 2, 3, 1)
	for _, owned := range []bool{false, true} {
		in, err := backend.GetBuffer(inShape)
		if err != nil {
			t.Fatal(err)
		}
		flat := in.Flat.([]float32)
		for i := range flat {
			flat[i] = float32(i + 1)
		}
		node := &gobackend.Node{Shape: outShape, Data: []int{1, 0, 2, 3}}
		out, err := execTranspose(backend, node, []*gobackend.Buffer{in}, []bool{owned})
		if err != nil {
			t.Fatal(err)
		}
		if !out.RawShape.Equal(outShape) {
			t.Fatalf("owned=%v: shape %s, want %s", owned, out.RawShape, outShape)
		}
		if (out == in) != owned {
			t.Fatalf("owned=%v: output reuses input = %v", owned, out == in)
		}
		for i, v := range out.Flat.([]float32) {
			if v != float32(i+1) {
				t.Fatalf("owned=%v: out[%d] = %g, want %d", owned, i, v, i+1)
			}
		}
	}
}
