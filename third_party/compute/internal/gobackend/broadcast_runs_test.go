// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package gobackend

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
)

// TestIterRunsMatchesIterFlatIndices expands IterRuns element by element and compares it with
// IterFlatIndices on random broadcasts.
func TestIterRunsMatchesIterFlatIndices(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 500; trial++ {
		rank := 1 + rng.IntN(5)
		tgt, lhs, rhs := make([]int, rank), make([]int, rank), make([]int, rank)
		for i := range tgt {
			tgt[i] = []int{1, 2, 3, 7}[rng.IntN(4)]
			lhs[i], rhs[i] = tgt[i], tgt[i]
			switch rng.IntN(3) {
			case 0:
				lhs[i] = 1
			case 1:
				rhs[i] = 1
			}
		}
		ls, rs, ts := shapes.Make(dtypes.Float32, lhs...), shapes.Make(dtypes.Float32, rhs...), shapes.Make(dtypes.Float32, tgt...)
		zi := NewZippedBroadcastIterator(ls, rs, ts)
		var want, got []ZippedIndices
		for idx := range zi.IterFlatIndices() {
			want = append(want, idx)
		}
		for run := range zi.IterRuns() {
			for i := 0; i < run.N; i++ {
				got = append(got, ZippedIndices{LHSFlatIdx: run.LHS + i*run.LHSStep, RHSFlatIdx: run.RHS + i*run.RHSStep, TgtFlatIdx: run.Out + i})
			}
		}
		// The same runs, iterated in two parts.
		var parts []ZippedIndices
		runs := zi.Runs()
		mid := runs.Count() / 3
		for _, r := range [][2]int{{0, mid}, {mid, runs.Count()}} {
			for run := range runs.Range(r[0], r[1]) {
				for i := 0; i < run.N; i++ {
					parts = append(parts, ZippedIndices{LHSFlatIdx: run.LHS + i*run.LHSStep, RHSFlatIdx: run.RHS + i*run.RHSStep, TgtFlatIdx: run.Out + i})
				}
			}
		}
		if len(parts) != len(want) {
			t.Fatalf("%v ⊕ %v → %v: %d indices from two parts, want %d", lhs, rhs, tgt, len(parts), len(want))
		}
		for i := range want {
			if parts[i] != want[i] {
				t.Fatalf("%v ⊕ %v → %v: element %d from two parts = %+v, want %+v", lhs, rhs, tgt, i, parts[i], want[i])
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%v ⊕ %v → %v: %d indices from runs, want %d", lhs, rhs, tgt, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%v ⊕ %v → %v: element %d = %+v, want %+v", lhs, rhs, tgt, i, got[i], want[i])
			}
		}
	}
}
