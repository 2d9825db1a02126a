// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build !(amd64 && goexperiment.simd)

package ops

import "github.com/gomlx/compute"

// withVectorLoops returns f: vector loops exist only for amd64 with GOEXPERIMENT=simd (polo patch 0009).
func withVectorLoops(op compute.OpType, f func(l, r, out []float32, lStep, rStep int)) func(l, r, out []float32, lStep, rStep int) {
	return f
}

// vectorRows returns nil: rows loops exist only with the vector loops (polo patch 0013).
func vectorRows(op compute.OpType) func(l, r, out []float32, n, rows, ls, rs, lStep, rStep int) {
	return nil
}
