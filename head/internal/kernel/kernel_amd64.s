//go:build !noasm

#include "textflag.h"

// func avx2Kernel4x16(k int, a *float32, ais, aps int, b *float32, ldb int, c *float32, ldc int, add int)
//
// C[4×16] (+)= A[4×k]·B[k×16]. A's element (i,p) is at a + 4·(i·ais + p·aps),
// B's row p at b + 4·p·ldb, C's row i at c + 4·i·ldc. Y0..Y7 hold the 4×16
// accumulators (two 8-wide halves per row); every step of p loads one row of
// B and broadcasts the four A values of column p.
TEXT ·avx2Kernel4x16(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ ais+16(FP), R8
	MOVQ aps+24(FP), R12
	MOVQ b+32(FP), BX
	MOVQ ldb+40(FP), R13
	MOVQ c+48(FP), DX
	MOVQ ldc+56(FP), R14
	MOVQ add+64(FP), R15
	SHLQ $2, R8
	SHLQ $2, R12
	SHLQ $2, R13
	SHLQ $2, R14
	LEAQ (R8)(R8*2), R9
	LEAQ (R14)(R14*2), R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	TESTQ CX, CX
	JZ    done

loop:
	VMOVUPS      (BX), Y8
	VMOVUPS      32(BX), Y9
	VBROADCASTSS (SI), Y10
	VFMADD231PS  Y8, Y10, Y0
	VFMADD231PS  Y9, Y10, Y1
	VBROADCASTSS (SI)(R8*1), Y11
	VFMADD231PS  Y8, Y11, Y2
	VFMADD231PS  Y9, Y11, Y3
	VBROADCASTSS (SI)(R8*2), Y12
	VFMADD231PS  Y8, Y12, Y4
	VFMADD231PS  Y9, Y12, Y5
	VBROADCASTSS (SI)(R9*1), Y13
	VFMADD231PS  Y8, Y13, Y6
	VFMADD231PS  Y9, Y13, Y7
	ADDQ         R12, SI
	ADDQ         R13, BX
	DECQ         CX
	JNZ          loop

done:
	TESTQ R15, R15
	JZ    store
	VADDPS (DX), Y0, Y0
	VADDPS 32(DX), Y1, Y1
	VADDPS (DX)(R14*1), Y2, Y2
	VADDPS 32(DX)(R14*1), Y3, Y3
	VADDPS (DX)(R14*2), Y4, Y4
	VADDPS 32(DX)(R14*2), Y5, Y5
	VADDPS (DX)(R10*1), Y6, Y6
	VADDPS 32(DX)(R10*1), Y7, Y7

store:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, (DX)(R14*1)
	VMOVUPS Y3, 32(DX)(R14*1)
	VMOVUPS Y4, (DX)(R14*2)
	VMOVUPS Y5, 32(DX)(R14*2)
	VMOVUPS Y6, (DX)(R10*1)
	VMOVUPS Y7, 32(DX)(R10*1)
	VZEROUPPER
	RET

// func avx2Adam(w, m, v, grad *float32, n int, s *AdamStep)
//
// Adam on n elements (n a multiple of 8), 8 at a time; the scalar fields of
// s are broadcast once. Per element:
//   g += l2·w; m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²
//   w -= step · m / (√v · isbc2 + ε)
TEXT ·avx2Adam(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), DI
	MOVQ m+8(FP), SI
	MOVQ v+16(FP), DX
	MOVQ grad+24(FP), BX
	MOVQ n+32(FP), CX
	MOVQ s+40(FP), AX
	VBROADCASTSS 0(AX), Y8
	VBROADCASTSS 4(AX), Y9
	VBROADCASTSS 8(AX), Y10
	VBROADCASTSS 12(AX), Y11
	VBROADCASTSS 16(AX), Y12
	VBROADCASTSS 20(AX), Y13
	VBROADCASTSS 24(AX), Y14
	VBROADCASTSS 28(AX), Y15
	SHRQ $3, CX
	JZ   adamdone

adamloop:
	VMOVUPS      (BX), Y0
	VMOVUPS      (DI), Y1
	VFMADD231PS  Y1, Y8, Y0
	VMOVUPS      (SI), Y2
	VMULPS       Y9, Y2, Y2
	VFMADD231PS  Y0, Y10, Y2
	VMOVUPS      Y2, (SI)
	VMOVUPS      (DX), Y3
	VMULPS       Y11, Y3, Y3
	VMULPS       Y0, Y0, Y4
	VFMADD231PS  Y4, Y12, Y3
	VMOVUPS      Y3, (DX)
	VSQRTPS      Y3, Y5
	VFMADD213PS  Y15, Y14, Y5
	VDIVPS       Y5, Y2, Y6
	VFNMADD231PS Y6, Y13, Y1
	VMOVUPS      Y1, (DI)
	ADDQ         $32, BX
	ADDQ         $32, DI
	ADDQ         $32, SI
	ADDQ         $32, DX
	DECQ         CX
	JNZ          adamloop

adamdone:
	VZEROUPPER
	RET

// func avx512Kernel8x32(k int, a *float32, ais, aps int, b *float32, ldb int, c *float32, ldc int, add int)
//
// C[8×32] (+)= A[8×k]·B[k×32], addressed as in avx2Kernel4x16. Z0..Z15 hold
// the accumulators (two 16-wide halves per row), Z16/Z17 the row of B and
// Z18..Z25 the broadcast column of A.
TEXT ·avx512Kernel8x32(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ ais+16(FP), R8
	MOVQ aps+24(FP), R12
	MOVQ b+32(FP), BX
	MOVQ ldb+40(FP), R13
	MOVQ c+48(FP), DX
	MOVQ ldc+56(FP), DI
	MOVQ add+64(FP), AX
	SHLQ $2, R8
	SHLQ $2, R12
	SHLQ $2, R13
	SHLQ $2, DI
	LEAQ (R8)(R8*2), R9
	LEAQ (R8)(R8*4), R10
	LEAQ (R9)(R8*4), R11
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
	TESTQ CX, CX
	JZ    done512

loop512:
	VMOVUPS      (BX), Z16
	VMOVUPS      64(BX), Z17
	VBROADCASTSS (SI), Z18
	VBROADCASTSS (SI)(R8*1), Z19
	VBROADCASTSS (SI)(R8*2), Z20
	VBROADCASTSS (SI)(R9*1), Z21
	VBROADCASTSS (SI)(R8*4), Z22
	VBROADCASTSS (SI)(R10*1), Z23
	VBROADCASTSS (SI)(R9*2), Z24
	VBROADCASTSS (SI)(R11*1), Z25
	VFMADD231PS  Z16, Z18, Z0
	VFMADD231PS  Z17, Z18, Z1
	VFMADD231PS  Z16, Z19, Z2
	VFMADD231PS  Z17, Z19, Z3
	VFMADD231PS  Z16, Z20, Z4
	VFMADD231PS  Z17, Z20, Z5
	VFMADD231PS  Z16, Z21, Z6
	VFMADD231PS  Z17, Z21, Z7
	VFMADD231PS  Z16, Z22, Z8
	VFMADD231PS  Z17, Z22, Z9
	VFMADD231PS  Z16, Z23, Z10
	VFMADD231PS  Z17, Z23, Z11
	VFMADD231PS  Z16, Z24, Z12
	VFMADD231PS  Z17, Z24, Z13
	VFMADD231PS  Z16, Z25, Z14
	VFMADD231PS  Z17, Z25, Z15
	ADDQ         R12, SI
	ADDQ         R13, BX
	DECQ         CX
	JNZ          loop512

done512:
	// Row r of C is at DX + r·ldc; walk DX down the rows.
	TESTQ AX, AX
	JZ    store512
	VADDPS (DX), Z0, Z0
	VADDPS 64(DX), Z1, Z1
	ADDQ   DI, DX
	VADDPS (DX), Z2, Z2
	VADDPS 64(DX), Z3, Z3
	ADDQ   DI, DX
	VADDPS (DX), Z4, Z4
	VADDPS 64(DX), Z5, Z5
	ADDQ   DI, DX
	VADDPS (DX), Z6, Z6
	VADDPS 64(DX), Z7, Z7
	ADDQ   DI, DX
	VADDPS (DX), Z8, Z8
	VADDPS 64(DX), Z9, Z9
	ADDQ   DI, DX
	VADDPS (DX), Z10, Z10
	VADDPS 64(DX), Z11, Z11
	ADDQ   DI, DX
	VADDPS (DX), Z12, Z12
	VADDPS 64(DX), Z13, Z13
	ADDQ   DI, DX
	VADDPS (DX), Z14, Z14
	VADDPS 64(DX), Z15, Z15
	MOVQ   c+48(FP), DX

store512:
	VMOVUPS Z0, (DX)
	VMOVUPS Z1, 64(DX)
	ADDQ    DI, DX
	VMOVUPS Z2, (DX)
	VMOVUPS Z3, 64(DX)
	ADDQ    DI, DX
	VMOVUPS Z4, (DX)
	VMOVUPS Z5, 64(DX)
	ADDQ    DI, DX
	VMOVUPS Z6, (DX)
	VMOVUPS Z7, 64(DX)
	ADDQ    DI, DX
	VMOVUPS Z8, (DX)
	VMOVUPS Z9, 64(DX)
	ADDQ    DI, DX
	VMOVUPS Z10, (DX)
	VMOVUPS Z11, 64(DX)
	ADDQ    DI, DX
	VMOVUPS Z12, (DX)
	VMOVUPS Z13, 64(DX)
	ADDQ    DI, DX
	VMOVUPS Z14, (DX)
	VMOVUPS Z15, 64(DX)
	VZEROUPPER
	RET

// func avx512Adam(w, m, v, grad *float32, n int, s *AdamStep)
//
// avx2Adam 16 elements at a time (n a multiple of 16).
TEXT ·avx512Adam(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), DI
	MOVQ m+8(FP), SI
	MOVQ v+16(FP), DX
	MOVQ grad+24(FP), BX
	MOVQ n+32(FP), CX
	MOVQ s+40(FP), AX
	VBROADCASTSS 0(AX), Z8
	VBROADCASTSS 4(AX), Z9
	VBROADCASTSS 8(AX), Z10
	VBROADCASTSS 12(AX), Z11
	VBROADCASTSS 16(AX), Z12
	VBROADCASTSS 20(AX), Z13
	VBROADCASTSS 24(AX), Z14
	VBROADCASTSS 28(AX), Z15
	SHRQ $4, CX
	JZ   adam512done

adam512loop:
	VMOVUPS      (BX), Z0
	VMOVUPS      (DI), Z1
	VFMADD231PS  Z1, Z8, Z0
	VMOVUPS      (SI), Z2
	VMULPS       Z9, Z2, Z2
	VFMADD231PS  Z0, Z10, Z2
	VMOVUPS      Z2, (SI)
	VMOVUPS      (DX), Z3
	VMULPS       Z11, Z3, Z3
	VMULPS       Z0, Z0, Z4
	VFMADD231PS  Z4, Z12, Z3
	VMOVUPS      Z3, (DX)
	VSQRTPS      Z3, Z5
	VFMADD213PS  Z15, Z14, Z5
	VDIVPS       Z5, Z2, Z6
	VFNMADD231PS Z6, Z13, Z1
	VMOVUPS      Z1, (DI)
	ADDQ         $64, BX
	ADDQ         $64, DI
	ADDQ         $64, SI
	ADDQ         $64, DX
	DECQ         CX
	JNZ          adam512loop

adam512done:
	VZEROUPPER
	RET
