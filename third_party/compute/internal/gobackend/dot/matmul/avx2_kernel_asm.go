// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package matmul

import "unsafe"

// avx2PanelKernelFloat32Asm is the AVX2 float32 micro-kernel in assembly (polo patch 0021, see
// avx2_kernel_amd64.s): every 16-column tile of packed rhs times every 4-row strip of packed lhs,
// stored into out (row stride outStrideBytes), or added to it when accumulate != 0.
//
// x86 CPUs without AVX-512 (most Intel client CPUs, AMD Zen 2 and 3) take the AVX2 kernels. The
// Go kernel loaded each lhs value into a scalar register and broadcast it (two instructions), and
// the compiler's 213-form FMA cost a register copy per FMA; half of the demo-shape RL step's CPU
// time was in it. The assembly broadcasts straight from memory and accumulates with 231-form FMAs:
// the same FMAs in the same order, so the output is bit-identical.
//
//go:noescape
func avx2PanelKernelFloat32Asm(lhs, rhs, out unsafe.Pointer, k, rowStrips, colTiles, outStrideBytes, accumulate int)
