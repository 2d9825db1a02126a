// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

// Package vecstate clears the upper vector state for the scalar code that follows (polo patch 0019).
package vecstate

import "simd/archsimd"

var hasAVX = archsimd.X86.AVX()

// Clear marks the upper halves of the vector registers clean (VZEROUPPER) before scalar
// code runs (polo patch 0019).
//
// With GOEXPERIMENT=simd the Go runtime restores all ZMM registers after an asynchronous
// preemption (runtime.asyncPreempt) and nothing clears them afterwards, so a goroutine can resume
// its scalar code with the upper state dirty. On Intel Xeons every legacy-SSE instruction then
// pays an AVX-SSE transition (860 ns instead of 7 ns per math.Exp was measured; scalar code ran ~2×
// slower on an AMD EPYC too). The kernels leave the state clean themselves (see
// gobackend/avxsse_guard_test.go); the executor clears it before each op and the worker pool before
// each task, which bounds a preemption's damage to one op or one task.
func Clear() {
	if hasAVX {
		archsimd.ClearAVXUpperBits()
	}
}
