//go:build goexperiment.simd && amd64

package avxstate

import "simd/archsimd"

// Clear executes VZEROUPPER, so that the legacy SSE code that follows runs without AVX/SSE
// transition penalties. Call it once before a long scalar float loop, not inside it.
func Clear() {
	if archsimd.X86.AVX() {
		archsimd.ClearAVXUpperBits()
	}
}

// clears reports whether Clear executes VZEROUPPER in this build.
const clears = true
