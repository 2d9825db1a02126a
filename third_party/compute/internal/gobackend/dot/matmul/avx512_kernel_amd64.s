// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

#include "textflag.h"

// Stores one row of the tile (two zmm) at R12 and moves R12 to the next output row; ACCROW first
// adds the values already there.
#define STROW(a, b) VMOVUPS a, (R12); VMOVUPS b, 64(R12); ADDQ R10, R12
#define ACCROW(a, b) VADDPS (R12), a, a; VADDPS 64(R12), b, b; VMOVUPS a, (R12); VMOVUPS b, 64(R12); ADDQ R10, R12

// func avx512PanelKernelFloat32Asm(lhs, rhs, out unsafe.Pointer, k, rowStrips, colTiles, outStrideBytes, accumulate int)
//
// Polo patch 0008: the float32 micro-kernel of the large matmul in assembly. lhs is packed in
// strips of 4 rows ([k][4] per strip, strips k*16 bytes apart), rhs in tiles of 32 columns ([k][32]
// per tile, tiles k*128 bytes apart); out is row-major with outStrideBytes between rows. For every
// column tile (outer loop, the tile stays in L1) and every pair of row strips, 8x32 outputs are
// accumulated in 16 zmm registers with FMAs in the 231 form whose lhs operand is an embedded
// broadcast from memory (no register copies), then stored, or added to out when accumulate != 0. A last odd strip
// uses a 4x32 tile.
TEXT ·avx512PanelKernelFloat32Asm(SB), NOSPLIT, $0-64
	MOVQ lhs+0(FP), AX
	MOVQ rhs+8(FP), BX
	MOVQ out+16(FP), DX
	MOVQ k+24(FP), CX
	MOVQ rowStrips+32(FP), R8
	MOVQ colTiles+40(FP), R9
	MOVQ outStrideBytes+48(FP), R10
	MOVQ CX, R11
	SHLQ $4, R11               // bytes per lhs strip
	TESTQ CX, CX
	JEQ  done
	TESTQ R8, R8
	JEQ  done
	TESTQ R9, R9
	JEQ  done

colLoop:
	MOVQ AX, DI                // first lhs strip
	MOVQ DX, R13               // output rows of this column tile
	MOVQ R8, R14               // strips left

rowLoop:
	CMPQ R14, $2
	JLT  oneStrip
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	MOVQ BX, SI
	LEAQ (DI)(R11*1), R15      // second strip
	MOVQ CX, R12

loop8:
	VMOVUPS (SI), Z16
	VMOVUPS 64(SI), Z17
	VFMADD231PS.BCST (DI), Z16, Z0
	VFMADD231PS.BCST (DI), Z17, Z1
	VFMADD231PS.BCST 4(DI), Z16, Z2
	VFMADD231PS.BCST 4(DI), Z17, Z3
	VFMADD231PS.BCST 8(DI), Z16, Z4
	VFMADD231PS.BCST 8(DI), Z17, Z5
	VFMADD231PS.BCST 12(DI), Z16, Z6
	VFMADD231PS.BCST 12(DI), Z17, Z7
	VFMADD231PS.BCST (R15), Z16, Z8
	VFMADD231PS.BCST (R15), Z17, Z9
	VFMADD231PS.BCST 4(R15), Z16, Z10
	VFMADD231PS.BCST 4(R15), Z17, Z11
	VFMADD231PS.BCST 8(R15), Z16, Z12
	VFMADD231PS.BCST 8(R15), Z17, Z13
	VFMADD231PS.BCST 12(R15), Z16, Z14
	VFMADD231PS.BCST 12(R15), Z17, Z15
	ADDQ $128, SI
	ADDQ $16, DI
	ADDQ $16, R15
	DECQ R12
	JNE  loop8

	MOVQ R13, R12
	CMPQ accumulate+56(FP), $0
	JNE  acc8
	STROW(Z0, Z1)
	STROW(Z2, Z3)
	STROW(Z4, Z5)
	STROW(Z6, Z7)
	STROW(Z8, Z9)
	STROW(Z10, Z11)
	STROW(Z12, Z13)
	STROW(Z14, Z15)
	JMP  stored8

acc8:
	ACCROW(Z0, Z1)
	ACCROW(Z2, Z3)
	ACCROW(Z4, Z5)
	ACCROW(Z6, Z7)
	ACCROW(Z8, Z9)
	ACCROW(Z10, Z11)
	ACCROW(Z12, Z13)
	ACCROW(Z14, Z15)

stored8:
	MOVQ R12, R13
	MOVQ R15, DI               // the strip after the pair
	SUBQ $2, R14
	JMP  rowLoop

oneStrip:
	TESTQ R14, R14
	JEQ  rowsDone
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	MOVQ BX, SI
	MOVQ CX, R12

loop4:
	VMOVUPS (SI), Z16
	VMOVUPS 64(SI), Z17
	VFMADD231PS.BCST (DI), Z16, Z0
	VFMADD231PS.BCST (DI), Z17, Z1
	VFMADD231PS.BCST 4(DI), Z16, Z2
	VFMADD231PS.BCST 4(DI), Z17, Z3
	VFMADD231PS.BCST 8(DI), Z16, Z4
	VFMADD231PS.BCST 8(DI), Z17, Z5
	VFMADD231PS.BCST 12(DI), Z16, Z6
	VFMADD231PS.BCST 12(DI), Z17, Z7
	ADDQ $128, SI
	ADDQ $16, DI
	DECQ R12
	JNE  loop4

	MOVQ R13, R12
	CMPQ accumulate+56(FP), $0
	JNE  acc4
	STROW(Z0, Z1)
	STROW(Z2, Z3)
	STROW(Z4, Z5)
	STROW(Z6, Z7)
	JMP  rowsDone

acc4:
	ACCROW(Z0, Z1)
	ACCROW(Z2, Z3)
	ACCROW(Z4, Z5)
	ACCROW(Z6, Z7)

rowsDone:
	// SI ends one column tile past BX (every strip loop reads the whole tile).
	MOVQ SI, BX
	ADDQ $128, DX
	DECQ R9
	JNE  colLoop

done:
	VZEROUPPER
	RET
