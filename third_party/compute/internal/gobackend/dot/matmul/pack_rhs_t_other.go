// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build !(amd64 && goexperiment.simd)

package matmul

// packTransposedRHSFloat32 needs AVX2 (polo patch 0010); elsewhere unsafePackLHS packs.
func packTransposedRHSFloat32(src, panel []float32, rowStart, colStart, srcCols, copyRows, contractingCols, strip int) bool {
	return false
}
