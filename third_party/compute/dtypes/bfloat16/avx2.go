// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package bfloat16

import (
	"simd/archsimd"
	"unsafe"
)

// BFloat16x16 is an alias for archsimd.Uint16x16 with corresponding utility methods.
//
// Only available if archsimd.X86.AVX2() returns true at runtime -- indicating AVX2 is available.
// If not available, don't use this, it will crash!
type BFloat16x16 archsimd.Uint16x16

// ToFloat32 converts a vector of 16 bfloat16 values (as an archsimd.Uint16x16) to two vectors of 8 float32 values
// (as archsimd.Float32x8).
func (v BFloat16x16) ToFloat32() (lo, hi archsimd.Float32x8) {
	// Cast back to use the archsimd methods
	vec := archsimd.Uint16x16(v)
	l := vec.GetLo().ExtendToUint32().ShiftAllLeft(16)
	h := vec.GetHi().ExtendToUint32().ShiftAllLeft(16)
	return l.AsFloat32x8(), h.AsFloat32x8()
}

// LoadBFloat16x16 loads 16 BFloat16 values from the given pointer into a BFloat16x16 vector.
//
// The pointer must be aligned to 32 bytes, just like usual AVX2 loads.
//
// Only available if archsimd.X86.AVX2() returns true at runtime -- indicating AVX2 is available.
// If not available, don't use this, it will crash!
func LoadBFloat16x16(ptr *[16]BFloat16) BFloat16x16 {
	vec := archsimd.LoadUint16x16((*[16]uint16)(unsafe.Pointer(ptr)))
	return BFloat16x16(vec)
}

// BFloat16x8 is an alias for archsimd.Uint16x8 holding 8 BFloat16 values.
//
// Only available if archsimd.X86.AVX2() returns true at runtime -- indicating AVX2 is available.
type BFloat16x8 archsimd.Uint16x8

// LoadBFloat16x8 loads 8 BFloat16 values (16 bytes) from the given pointer.
//
// Only available if archsimd.X86.AVX2() returns true at runtime -- indicating AVX2 is available.
func LoadBFloat16x8(ptr *[8]BFloat16) BFloat16x8 {
	return BFloat16x8(archsimd.LoadUint16x8((*[8]uint16)(unsafe.Pointer(ptr))))
}

// ToFloat32 converts 8 BFloat16 values to a vector of 8 float32 values.
func (v BFloat16x8) ToFloat32() archsimd.Float32x8 {
	return archsimd.Uint16x8(v).ExtendToUint32().ShiftAllLeft(16).AsFloat32x8()
}

// BroadcastFloat32x8 widens b to float32 in all 8 lanes (see BroadcastFloat32x16).
func BroadcastFloat32x8(b BFloat16) archsimd.Float32x8 {
	return archsimd.BroadcastUint32x8(uint32(b) << 16).AsFloat32x8()
}
