// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/shapes"
)

// TestTransposeFastMatchesIterator compares the fast transpose with the element-by-element
// TransposeIterator on random shapes (unit axes, merged axes, tiles with ragged edges) and
// permutations, sequentially and split over workers.
func TestTransposeFastMatchesIterator(t *testing.T) {
	b, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	backend := b.(*gobackend.Backend)
	rng := rand.New(rand.NewPCG(1, 2))
	dimChoices := []int{1, 2, 3, 5, 16, 17, 33}
	for trial := 0; trial < 400; trial++ {
		rank := 1 + rng.IntN(5)
		dims := make([]int, rank)
		size := 1
		for i := range dims {
			dims[i] = dimChoices[rng.IntN(len(dimChoices))]
			size *= dims[i]
		}
		if size > 200000 {
			continue
		}
		perm := rng.Perm(rank)
		operand := make([]int32, size)
		for i := range operand {
			operand[i] = int32(i)
		}
		want := make([]int32, size)
		it := NewTransposeIterator(shapes.Make(dtypes.Int32, dims...), perm)
		for _, v := range operand {
			want[it.Next()] = v
		}
		for _, be := range []*gobackend.Backend{nil, backend} { // sequential, then over the workers
			got := make([]int32, size)
			transposeFast(be, operand, got, newTransposePlan(dims, perm))
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("dims %v perm %v: output[%d] = %d, want %d", dims, perm, i, got[i], want[i])
				}
			}
		}
	}
}

func TestTransposePlanMergesAxes(t *testing.T) {
	for _, c := range []struct {
		dims, perm, wantDims, wantPerm []int
	}{
		{[]int{2, 3, 4, 5}, []int{0, 2, 1, 3}, []int{2, 3, 4, 5}, []int{0, 2, 1, 3}},
		{[]int{2, 3, 4, 5}, []int{2, 3, 0, 1}, []int{6, 20}, []int{1, 0}},
		{[]int{2, 1, 4, 5}, []int{1, 0, 3, 2}, []int{2, 4, 5}, []int{0, 2, 1}},
		{[]int{7, 8}, []int{0, 1}, []int{56}, []int{0}},
	} {
		p := newTransposePlan(c.dims, c.perm)
		if !equalInts(p.dims, c.wantDims) || !equalInts(p.perm, c.wantPerm) {
			t.Errorf("plan(%v, %v) = %v %v, want %v %v", c.dims, c.perm, p.dims, p.perm, c.wantDims, c.wantPerm)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func BenchmarkTransposeFast(b *testing.B) {
	for _, c := range []struct {
		name       string
		dims, perm []int
	}{
		{"2048x256", []int{2048, 256}, []int{1, 0}},
		{"2048x1024", []int{2048, 1024}, []int{1, 0}},
		{"heads", []int{16, 128, 4, 64}, []int{0, 2, 1, 3}},
		{"64x128x64", []int{64, 128, 64}, []int{0, 2, 1}},
	} {
		b.Run(c.name, func(b *testing.B) {
			size := 1
			for _, d := range c.dims {
				size *= d
			}
			in, out := make([]float32, size), make([]float32, size)
			plan := newTransposePlan(c.dims, c.perm)
			b.SetBytes(int64(4 * size))
			for b.Loop() {
				transposeFast(nil, in, out, plan)
			}
		})
	}
}
