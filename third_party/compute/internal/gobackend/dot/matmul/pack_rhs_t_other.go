// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build !(amd64 && goexperiment.simd)

package matmul

// packTransposedRHS32Float32 needs AVX2 (polo patch 0010); elsewhere unsafePackLHS packs.
func packTransposedRHS32Float32(src, panel []float32, rowStart, colStart, srcCols, copyRows, contractingCols int) bool {
	return false
}
