// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

#include "textflag.h"

// One k step of the 4x16 tile: two rhs vectors, four broadcast lhs values, eight FMAs in the 231
// form (acc += rhs * lhs, the Go kernel's rhs.MulAdd(lhs, acc) bit for bit).
#define KSTEP(l, r) \
	VMOVUPS r(R12), Y8; \
	VMOVUPS r+32(R12), Y9; \
	VBROADCASTSS l(SI), Y10; \
	VBROADCASTSS l+4(SI), Y11; \
	VFMADD231PS Y10, Y8, Y0; \
	VFMADD231PS Y10, Y9, Y1; \
	VFMADD231PS Y11, Y8, Y2; \
	VFMADD231PS Y11, Y9, Y3; \
	VBROADCASTSS l+8(SI), Y12; \
	VBROADCASTSS l+12(SI), Y13; \
	VFMADD231PS Y12, Y8, Y4; \
	VFMADD231PS Y12, Y9, Y5; \
	VFMADD231PS Y13, Y8, Y6; \
	VFMADD231PS Y13, Y9, Y7

// Stores one row of the tile (two ymm) at R13 and moves R13 to the next output row; ACCROW first
// adds the values already there (out + acc, as the packed-output pass computed it).
#define STROW(a, b) VMOVUPS a, (R13); VMOVUPS b, 32(R13); ADDQ R10, R13
#define ACCROW(a, b) VADDPS (R13), a, a; VADDPS 32(R13), b, b; VMOVUPS a, (R13); VMOVUPS b, 32(R13); ADDQ R10, R13

// func avx2PanelKernelFloat32Asm(lhs, rhs, out unsafe.Pointer, k, rowStrips, colTiles, outStrideBytes, accumulate int)
//
// Polo patch 0021: the float32 micro-kernel of the AVX2 large matmul in assembly, for x86 CPUs
// without AVX-512. lhs is packed in strips of 4 rows ([k][4] per strip, strips k*16 bytes apart),
// rhs in tiles of 16 columns ([k][16] per tile, tiles k*64 bytes apart); out is the packed output
// panel, row-major with outStrideBytes between rows. For every column tile (outer loop, so the tile
// stays in L1) and every row strip, the 4x16 outputs are accumulated in 8 ymm registers and
// stored, or added to out when accumulate != 0 (polo patch 0026: whole tiles go straight to the
// output matrix instead of through the packed output panel). The Go kernel it replaces computes
// the same FMAs in the same order.
TEXT ·avx2PanelKernelFloat32Asm(SB), NOSPLIT, $0-64
	MOVQ lhs+0(FP), AX
	MOVQ rhs+8(FP), BX
	MOVQ out+16(FP), DX
	MOVQ k+24(FP), CX
	MOVQ rowStrips+32(FP), R8
	MOVQ colTiles+40(FP), R9
	MOVQ outStrideBytes+48(FP), R10
	TESTQ CX, CX
	JEQ  done
	TESTQ R8, R8
	JEQ  done
	TESTQ R9, R9
	JEQ  done
	MOVQ R10, DI
	SHLQ $2, DI                // bytes of 4 output rows
	MOVQ DI, R15

colLoop:
	MOVQ AX, SI                // lhs strip
	MOVQ DX, R14               // output rows of this strip
	MOVQ R8, DI                // strips left

rowLoop:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ BX, R12               // rhs tile, k = 0
	MOVQ CX, R13
	SHRQ $1, R13               // pairs of k steps
	JEQ  tail

pairLoop:
	KSTEP(0, 0)
	KSTEP(16, 64)
	ADDQ $32, SI
	ADDQ $128, R12
	DECQ R13
	JNE  pairLoop

tail:
	TESTQ $1, CX
	JEQ  store
	KSTEP(0, 0)
	ADDQ $16, SI
	ADDQ $64, R12

store:
	MOVQ R14, R13
	CMPQ accumulate+56(FP), $0
	JNE  accStore
	STROW(Y0, Y1)
	STROW(Y2, Y3)
	STROW(Y4, Y5)
	STROW(Y6, Y7)
	JMP  stored

accStore:
	ACCROW(Y0, Y1)
	ACCROW(Y2, Y3)
	ACCROW(Y4, Y5)
	ACCROW(Y6, Y7)

stored:
	ADDQ R15, R14              // next strip's output rows
	DECQ DI
	JNE  rowLoop

	MOVQ R12, BX               // the next rhs tile starts where this one ended
	ADDQ $64, DX               // next 16 output columns
	DECQ R9
	JNE  colLoop

done:
	VZEROUPPER
	RET
