// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package dot

import "testing"

// TestInLayoutOrder checks the test polo patch 0024 uses to pick the layout that transposes the
// fewest operands: a [K, N] rhs contracting over axis 0 is already non-transposed.
func TestInLayoutOrder(t *testing.T) {
	for _, c := range []struct {
		rank                  int
		contracting, batch    []int
		nonTransposed, transp bool
	}{
		{2, []int{0}, nil, true, false},       // [K, N]: dy of a weight gradient
		{2, []int{1}, nil, false, true},       // [N, K]: a weight used as x·Wᵀ
		{3, []int{1}, []int{0}, true, false},  // [B, K, N]
		{3, []int{2}, []int{0}, false, true},  // [B, N, K]
		{3, []int{0}, []int{1}, false, false}, // batch not leading
		{1, []int{0}, nil, true, true},        // [K]: no cross axis
	} {
		if got := inLayoutOrder(c.rank, c.contracting, c.batch, LayoutNonTransposed); got != c.nonTransposed {
			t.Errorf("rank %d contracting %v batch %v: non-transposed = %v, want %v", c.rank, c.contracting, c.batch, got, c.nonTransposed)
		}
		if got := inLayoutOrder(c.rank, c.contracting, c.batch, LayoutTransposed); got != c.transp {
			t.Errorf("rank %d contracting %v batch %v: transposed = %v, want %v", c.rank, c.contracting, c.batch, got, c.transp)
		}
	}
}
