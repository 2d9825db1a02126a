// Package avxstate clears and inspects the upper halves of the AVX registers.
//
// In binaries built with GOEXPERIMENT=simd on AVX-512 machines, the runtime's asynchronous
// preemption handler saves and restores Z0–Z31 with 512-bit moves and does not execute VZEROUPPER
// afterwards, so after any preemption (every ~10 ms of running, and at GC) a goroutine running pure
// scalar Go code continues with the upper register state marked in use. Go's scalar float code
// is legacy SSE (MOVSD, ADDSD, CVTSI2SD, ...); on Intel Xeons every such instruction then pays an
// AVX/SSE transition or merge penalty, and code that mixes VEX and SSE instructions (math.Exp)
// measured 120× slower. An AMD EPYC (Zen 4) measured scalar exp loops about 2× slower.
//
// Hot host-side loops call Clear once before they start; Dirty lets tests check that they do.
package avxstate
