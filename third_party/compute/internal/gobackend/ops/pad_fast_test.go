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

// TestPadMatchesIndexing checks execPad (whole-run copies along an innermost padded axis, polo
// patch 0025; element by element with interior padding) against direct index arithmetic, for
// random ranks, paddings (start, end, interior) and fill values.
func TestPadMatchesIndexing(t *testing.T) {
	b, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	backend := b.(*gobackend.Backend)
	rng := rand.New(rand.NewPCG(25, 25))
	for trial := 0; trial < 300; trial++ {
		rank := 1 + rng.IntN(4)
		dims, outDims := make([]int, rank), make([]int, rank)
		cfg := make([]compute.PadAxis, rank)
		for i := range dims {
			dims[i] = 1 + rng.IntN(7)
			if rng.IntN(2) == 0 { // half the axes untouched
				cfg[i] = compute.PadAxis{Start: rng.IntN(4), End: rng.IntN(4)}
				if rng.IntN(4) == 0 {
					cfg[i].Interior = 1 + rng.IntN(2)
				}
			}
			outDims[i] = dims[i] + cfg[i].Start + cfg[i].End + (dims[i]-1)*cfg[i].Interior
		}
		in := &gobackend.Buffer{RawShape: shapes.Make(dtypes.Float32, dims...), InUse: true}
		flat := make([]float32, in.RawShape.Size())
		for i := range flat {
			flat[i] = float32(i + 1)
		}
		in.Flat = flat
		fill := float32(rng.IntN(2)) * -7 // zero (the fast fill) or not
		fillBuf := &gobackend.Buffer{RawShape: shapes.Make(dtypes.Float32), Flat: []float32{fill}, InUse: true}
		node := &gobackend.Node{Shape: shapes.Make(dtypes.Float32, outDims...), Data: &padNode{axesConfig: cfg}}
		out, err := execPad(backend, node, []*gobackend.Buffer{in, fillBuf}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := out.Flat.([]float32)
		want := make([]float32, len(got))
		for i := range want {
			want[i] = fill
		}
		outStrides := node.Shape.Strides()
		for src := range flat {
			rem, dst := src, 0
			for a := rank - 1; a >= 0; a-- {
				idx := rem % dims[a]
				rem /= dims[a]
				dst += (cfg[a].Start + idx*(1+cfg[a].Interior)) * outStrides[a]
			}
			want[dst] = flat[src]
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("dims %v pad %v: out[%d] = %g, want %g", dims, cfg, i, got[i], want[i])
			}
		}
	}
}
