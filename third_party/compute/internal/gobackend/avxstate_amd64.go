// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package gobackend

import "simd/archsimd"

var hasAVX = archsimd.X86.AVX()

// clearVectorState marks the upper halves of the vector registers clean (VZEROUPPER) before an
// op runs (polo patch 0019).
//
// With GOEXPERIMENT=simd the Go runtime restores all ZMM registers after an asynchronous
// preemption (runtime.asyncPreempt) and nothing clears them afterwards, so a goroutine can resume
// its scalar code with the upper state dirty. On Intel Xeons every legacy-SSE instruction then
// pays an AVX-SSE transition (860 ns instead of 7 ns per math.Exp was measured). The kernels leave
// the state clean themselves (see avxsse_guard_test.go); this bounds a preemption's damage to one op.
func clearVectorState() {
	if hasAVX {
		archsimd.ClearAVXUpperBits()
	}
}
