// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build !amd64 || !goexperiment.simd

package vecstate

// Clear is a no-op where the upper vector state needs no care (see clear_amd64.go).
func Clear() {}
