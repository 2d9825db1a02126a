// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package matmul

import "testing"

// TestPackTransposedRHS32 checks unsafePackLHS with 32-row strips of float32 (the vector path of
// polo patch 0010, partial last strips and k tails included) against the reference packLHS.
func TestPackTransposedRHS32(t *testing.T) {
	runPackLHSTests(t, unsafePackLHS[float32], 32)
	runPackLHSTests(t, unsafePackLHS[float64], 32)
}

// TestPackTransposedRHS16 is TestPackTransposedRHS32 for the AVX2 large matmul's 16-row strips
// (polo patch 0023).
func TestPackTransposedRHS16(t *testing.T) {
	runPackLHSTests(t, unsafePackLHS[float32], 16)
}
