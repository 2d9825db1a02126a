// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package matmul

import "unsafe"

// avx512PanelKernelFloat32Asm is the float32 micro-kernel in assembly (polo patch 0008, see
// avx512_kernel_amd64.s): every 32-column tile of packed rhs times every 4-row strip of packed
// lhs, stored into out (row stride outStrideBytes), or added to it when accumulate != 0.
//
// The Go compiler's FMA intrinsic is the 213 form (the result overwrites a multiplicand), so the
// Go kernel copied a register before each FMA and kept only 8 accumulators; the assembly keeps 16
// accumulators, takes the lhs value as an embedded broadcast and runs ~1.5x faster at the
// shapes of a small transformer.
//
//go:noescape
func avx512PanelKernelFloat32Asm(lhs, rhs, out unsafe.Pointer, k, rowStrips, colTiles, outStrideBytes, accumulate int)

// useAsmPanelKernel switches the float32 large matmul to the assembly micro-kernel (tests compare
// both).
var useAsmPanelKernel = true
