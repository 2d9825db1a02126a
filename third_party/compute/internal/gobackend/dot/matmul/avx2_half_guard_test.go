// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build linux && amd64 && goexperiment.simd

package matmul

import (
	"fmt"
	"math/rand/v2"
	"simd/archsimd"
	"syscall"
	"testing"
	"unsafe"

	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/internal/gobackend/dot"
)

// guardedSlice returns a slice of n elements that ends exactly where an inaccessible page begins,
// so a kernel that reads past the end of its operand crashes instead of reading garbage.
func guardedSlice[T any](t *testing.T, n int) []T {
	t.Helper()
	page := syscall.Getpagesize()
	var zero T
	size := n * int(unsafe.Sizeof(zero))
	dataPages := (size + page - 1) / page
	mem, err := syscall.Mmap(-1, 0, (dataPages+1)*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Munmap(mem) })
	if err := syscall.Mprotect(mem[dataPages*page:], syscall.PROT_NONE); err != nil {
		t.Skipf("mprotect: %v", err)
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&mem[dataPages*page-size])), n)
}

// TestAVX2HalfNoReadPastEnd runs the AVX2 BFloat16 and Float16 kernels on operands that end at an
// inaccessible page: rhs row widths of 8 to 15 used to be read as 16 halves.
func TestAVX2HalfNoReadPastEnd(t *testing.T) {
	if !archsimd.X86.AVX2() {
		t.Skip("no AVX2 on this CPU")
	}
	b, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	backend := b.(*gobackend.Backend)
	defer func() { ForceSmallVariant, ForceLargeVariant = false, false }()
	rng := rand.New(rand.NewPCG(13, 14))
	for _, dtype := range []string{"bf16", "f16"} {
		for _, variant := range []string{"small", "large"} {
			for _, layout := range []dot.Layout{dot.LayoutNonTransposed, dot.LayoutTransposed} {
				ForceSmallVariant, ForceLargeVariant = variant == "small", variant == "large"
				for _, m := range []int{1, 3, 4, 5} {
					for n := 1; n <= 17; n++ {
						for _, k := range []int{1, 7, 15, 16, 17, 33} {
							name := fmt.Sprintf("%s/%s/%s m=%d n=%d k=%d", dtype, variant, layout, m, n, k)
							lhs64, rhs64 := make([]float64, m*k), make([]float64, n*k)
							out := make([]float32, m*n)
							if dtype == "bf16" {
								lhs, rhs := guardedSlice[bfloat16.BFloat16](t, m*k), guardedSlice[bfloat16.BFloat16](t, n*k)
								for i := range lhs {
									lhs[i] = bfloat16.FromFloat32(float32(rng.NormFloat64()))
									lhs64[i] = float64(lhs[i].Float32())
								}
								for i := range rhs {
									rhs[i] = bfloat16.FromFloat32(float32(rng.NormFloat64()))
									rhs64[i] = float64(rhs[i].Float32())
								}
								avx2RouterBFloat16(backend, layout, lhs, rhs, 1, m, n, k, out)
							} else {
								lhs, rhs := guardedSlice[float16.Float16](t, m*k), guardedSlice[float16.Float16](t, n*k)
								for i := range lhs {
									lhs[i] = float16.FromFloat32(float32(rng.NormFloat64()))
									lhs64[i] = float64(lhs[i].Float32())
								}
								for i := range rhs {
									rhs[i] = float16.FromFloat32(float32(rng.NormFloat64()))
									rhs64[i] = float64(rhs[i].Float32())
								}
								avx2RouterFloat16(backend, layout, lhs, rhs, 1, m, n, k, out)
							}
							if err := checkAgainstFloat64(layout, lhs64, rhs64, 1, m, n, k, out); err != nil {
								t.Errorf("%s: %v", name, err)
							}
						}
					}
				}
			}
		}
	}
}
